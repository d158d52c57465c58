"""text-generation end to end through the CLI: each data format x {full, LoRA} scaffolds, commits and smoke-trains;
the chat-template path runs on a local tiny model whose tokenizer has a chat template; the generated project is
then used as its owner would (which tokens are learned, train, evaluate, predict)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import git
import pytest

from conftest import DATA, run_cli

pytestmark = pytest.mark.slow

# Hub ids that are not on disk here: each smoke run also trains its stand-in byte-level BPE tokenizer, so these
# exercise the prompt-template path. Together they cover every decoder family in full and LoRA fine-tuning.
CASES = {
    "alpaca-qwen2-full": ["--data", str(DATA / "alpaca_mixed.jsonl")],
    "alpaca-gpt2-lora": ["--data", str(DATA / "alpaca_mixed.jsonl"), "--model", "openai-community/gpt2",
                         "--peft", "lora"],
    "chat-tinyllama-full": ["--data", str(DATA / "chat_support.jsonl"),
                            "--model", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"],
    "chat-qwen2-lora": ["--data", str(DATA / "chat_support.jsonl"), "--peft", "lora"],
    "sharegpt-mistral-full": ["--data", str(DATA / "sharegpt.json"), "--model", "mistralai/Mistral-7B-Instruct-v0.3"],
    "sharegpt-qwen2-lora": ["--data", str(DATA / "sharegpt.json"), "--peft", "lora"],
    "corpus-distilgpt2-full": ["--data", str(DATA / "corpus.txt"), "--model", "distilbert/distilgpt2"],
    "corpus-llama-lora": ["--data", str(DATA / "corpus.txt"), "--model", "meta-llama/Llama-3.2-1B", "--peft", "lora"],
}  # fmt: skip

# A chat template with its own role markers and an end-of-turn token that is not the end-of-text token.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "</s>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


def smoke_new(tmp_path: Path, name: str, *args: str) -> dict[str, Any]:
    result = run_cli("new", "--task", "text-generation", *args, "--output", name, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    smoke = json.loads(result.stdout.strip().splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke["failures"]
    losses = smoke["losses"]
    assert all(loss == loss for loss in losses) and sum(losses[-8:]) < 0.95 * sum(losses[:8])
    assert {"eval_loss", "eval_perplexity", "eval_tokens", "eval_samples"} <= set(smoke["metrics"])
    # The smoke run left the committed project exactly as committed.
    assert not git.Repo(tmp_path / name).is_dirty(untracked_files=True)
    return smoke


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_commits_and_smoke_trains(case: str, tmp_path: Path) -> None:
    smoke_new(tmp_path, case, *CASES[case])


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local tiny qwen2 whose tokenizer has a chat template, trained on the test data's texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    texts = [line for name in ("chat_support.jsonl", "alpaca_mixed.jsonl") for line in (DATA / name).open()]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    bpe.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=800, special_tokens=SPECIAL_TOKENS, initial_alphabet=alphabet)
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>", extra_special_tokens=SPECIAL_TOKENS[2:]
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = AutoConfig.for_model(
        "qwen2", vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=64, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("tiny-chat-qwen2")
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_chat_template_path_smoke_trains(chat_model: Path, tmp_path: Path) -> None:
    smoke_new(tmp_path, "chat", "--data", str(DATA / "chat_support.jsonl"), "--model", str(chat_model))
    smoke_new(tmp_path, "alpaca", "--data", str(DATA / "alpaca_mixed.jsonl"), "--model", str(chat_model),
              "--peft", "lora")  # fmt: skip


def project_python(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, env=env, timeout=600)


LEARNED = """
import json, sys
from transformers import AutoTokenizer
from config import load_config
from data import make_dataset, read_records
cfg = load_config(sys.argv[1:])
tokenizer = AutoTokenizer.from_pretrained(cfg.model_name_or_path)
example = make_dataset(read_records(cfg.train_file).take(1), tokenizer, cfg)[0]
runs, run = [], []
for token, label in zip(example["input_ids"], example["labels"]):
    if label != -100:
        assert label == token
        run.append(token)
    elif run:
        runs.append(tokenizer.decode(run))
        run = []
if run:
    runs.append(tokenizer.decode(run))
print(json.dumps({"text": tokenizer.decode(example["input_ids"]), "learned": runs}))
"""


def learned_text(project: Path, *overrides: str) -> dict[str, Any]:
    result = project_python(project, "-c", LEARNED, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_only_assistant_turns_are_learned_with_and_without_a_chat_template(chat_model: Path, tmp_path: Path) -> None:
    result = run_cli("new", "--task", "text-generation", "--data", str(DATA / "chat_support.jsonl"),
                     "--model", str(chat_model), "--output", "p", "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = json.loads((DATA / "chat_support.jsonl").open().readline())["messages"]
    answers = [m["content"] for m in first if m["role"] == "assistant"]
    with_template = learned_text(tmp_path / "p")
    assert with_template["learned"] == [f"{answer}<|end|>\n" for answer in answers]
    assert with_template["text"].startswith("<|" + first[0]["role"] + "|>\n")
    plain = learned_text(tmp_path / "p", "use_chat_template=false", "system_prompt=Be brief.")
    assert plain["learned"] == [f"{answer}</s>" for answer in answers]
    assert plain["text"].startswith("Be brief.\n\n" if first[0]["role"] != "system" else first[0]["content"])
    assert "### Response:\n" in plain["text"] and "<|assistant|>" not in plain["text"]


def test_owner_trains_evaluates_and_generates_from_the_command_line(chat_model: Path, tmp_path: Path) -> None:
    result = run_cli("new", "--task", "text-generation", "--data", str(DATA / "alpaca_mixed.jsonl"),
                     "--model", str(chat_model), "--output", "p", "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    project, run = tmp_path / "p", tmp_path / "run"
    trained = project_python(project, "train.py", "num_epochs=2", "learning_rate=1e-2", f"output_dir={run}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    assert "perplexity" in (run / "eval_report.txt").read_text()

    evaluated = project_python(project, "evaluation.py", str(run / "best"))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert f'"eval_loss": {metrics["eval_loss"]}' in evaluated.stdout

    questions = ["What is the capital of Peru?", "用一句话介绍长城。"]
    predicted = project_python(project, "predict.py", str(run / "best"), *questions, "--max-new-tokens", "5")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    answers = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [a["instruction"] for a in answers] == questions
    assert all(isinstance(a["generated"], str) and a["input"] == "" for a in answers)

    out = tmp_path / "generated.jsonl"
    from_file = project_python(project, "predict.py", str(run / "best"), "--file", str(DATA / "alpaca_mixed.jsonl"),
                               "--max-new-tokens", "3", "--temperature", "0.8", "--output", str(out))  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 34 and all("reference" in line and "generated" in line for line in lines)
