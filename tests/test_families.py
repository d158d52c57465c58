"""Every supported model family scaffolds with LoRA and passes its smoke run (tiny model, offline): here, or in a
task's end-to-end tests."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from conftest import DATA
from scaffolder.pipeline import new_project
from scaffolder.spec import ProjectSpec
from scaffolder.tasks import FAMILIES

pytestmark = pytest.mark.slow

# A real hub id per family. None is cached here, so each smoke run also trains its stand-in tokenizer.
HUB_IDS = {
    "bert": "google-bert/bert-base-cased",
    "distilbert": "distilbert/distilbert-base-multilingual-cased",
    "roberta": "FacebookAI/roberta-large",
    "xlm-roberta": "FacebookAI/xlm-roberta-base",
    "deberta-v2": "microsoft/deberta-v3-small",
    "modernbert": "answerdotai/ModernBERT-base",
    "albert": "albert/albert-base-v2",
    "electra": "google/electra-small-discriminator",
    "gpt2": "openai-community/gpt2",
    "qwen2": "Qwen/Qwen2.5-0.5B-Instruct",
    "mistral": "mistralai/Mistral-7B-Instruct-v0.3",
    "llama": "meta-llama/Llama-3.2-1B-Instruct",
    "t5": "google/flan-t5-small",
    "mt5": "google/mt5-base",
    "bart": "facebook/bart-large-cnn",
    "marian": "Helsinki-NLP/opus-mt-en-de",
}
# The task (and its data) that each architecture's models are smoke-trained on.
TASK_DATA = {
    "encoder": ("text-classification", "nli_pairs.jsonl"),
    "decoder": ("text-generation", "alpaca_mixed.jsonl"),
    "encoder-decoder": ("translation", "wmt_en_de.jsonl"),
}


# Families whose LoRA smoke run is already part of a task's end-to-end tests (same target modules, same checks):
# not repeated here. The rest are trained here.
LORA_ELSEWHERE = {
    "bert": ("test_e2e", "intents-minilm-lora"),
    "roberta": ("test_e2e", "nli-roberta-lora"),
    "xlm-roberta": ("test_e2e_extractive", "ner-zh-default-lora"),
    "deberta-v2": ("test_e2e_extractive", "qa-flat-deberta-lora"),
    "gpt2": ("test_e2e_text_generation", "alpaca-gpt2-lora"),
    "qwen2": ("test_e2e_text_generation", "chat-qwen2-lora"),
    "llama": ("test_e2e_text_generation", "corpus-llama-lora"),
    "mt5": ("test_e2e_seq2seq", "dialogue-mt5-lora"),
    "bart": ("test_e2e_seq2seq", "en-zh-bart-lora"),
}


def test_every_family_has_a_hub_id_here_and_a_lora_smoke_run_somewhere() -> None:
    assert set(HUB_IDS) == set(FAMILIES)
    assert set(LORA_ELSEWHERE) < set(FAMILIES)
    for module, case in LORA_ELSEWHERE.values():
        args = importlib.import_module(module).CASES[case]
        assert args[args.index("--peft") + 1] == "lora", (module, case)


@pytest.mark.parametrize("family", sorted(set(HUB_IDS) - set(LORA_ELSEWHERE)))
def test_family_smoke_trains_with_lora(family: str, tmp_path: Path) -> None:
    task, data = TASK_DATA[FAMILIES[family].architecture]
    spec = ProjectSpec(task=task, train_data=DATA / data, model=HUB_IDS[family], peft="lora")
    result = new_project(spec, tmp_path / family)
    assert result.plan.family.model_type == family
    assert result.smoke is not None
    assert result.smoke.passed, result.smoke.failures


EXTRACTIVE_DATA = {"token-classification": DATA / "ner_conll.conll", "question-answering": DATA / "squad_v2.json"}
# Encoders that differ where token and span heads care, each on the head its quirk touches most: sub-word prefix
# spaces shift answer offsets (roberta), no token types in question/context pairs (distilbert), a fresh pooler
# that a token head must not save (deberta-v2; its span head runs in test_e2e_extractive), narrow embeddings
# (electra). bert runs in the tasks' own end-to-end tests.
EXTRACTIVE_CASES = [("roberta", "question-answering"), ("distilbert", "question-answering"),
                    ("deberta-v2", "token-classification"), ("electra", "token-classification")]  # fmt: skip


@pytest.mark.parametrize(("family", "task"), EXTRACTIVE_CASES)
def test_family_smoke_trains_token_and_span_heads_with_lora(task: str, family: str, tmp_path: Path) -> None:
    spec = ProjectSpec(task=task, train_data=EXTRACTIVE_DATA[task], model=HUB_IDS[family], peft="lora")
    result = new_project(spec, tmp_path / family)
    assert result.plan.family.model_type == family
    assert result.smoke is not None
    assert result.smoke.passed, result.smoke.failures
