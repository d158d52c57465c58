"""The PEFT catalogue end to end: every method scaffolds through the CLI and passes its smoke run, and the
combinations peft gets wrong are refused before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, run_cli
from scaffolder.errors import SpecError
from scaffolder.spec import ProjectSpec
from scaffolder.tasks import PEFT_METHODS, TASKS, peft_refusal

# none and lora run in test_e2e / test_families; the refused ones in the refusal tests below.
METHODS = [m for m in PEFT_METHODS if m not in ("none", "lora") and not peft_refusal(TASKS["text-classification"], m)]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_every_peft_method_smoke_trains_through_the_cli(method: str, tmp_path: Path) -> None:
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / "nli_pairs.jsonl"),
                     "--peft", method, "--output", "p", "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke["failures"]
    # export.py folds a LoRA-type adapter into the base weights; prompt methods add virtual tokens, which do not
    # fold, and IA3's merge fails on module heads in peft (scaffolder/tasks.py)
    assert (tmp_path / "p" / "export.py").exists() == (method == "adalora")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("data", "metric"), [("stsb_like.tsv", "eval_pearson"), ("topics_multilabel.jsonl", "eval_micro_f1")]
)
def test_regression_and_multi_label_smoke_train_through_the_cli(data: str, metric: str, tmp_path: Path) -> None:
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / data), "--peft", "lora",
                     "--output", "p", "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke["failures"]
    assert metric in smoke["metrics"]


@pytest.mark.parametrize("model", ["google-bert/bert-base-uncased", "distilbert/distilbert-base-uncased"])
def test_prefix_tuning_on_an_encoder_head_is_refused(tmp_path: Path, model: str) -> None:
    # transformers 5 encoders take no past key values, which peft hands them the prefixes as: the first training
    # step failed ("Model does not support past key values which are required for prefix tuning").
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / "sst_like.tsv"),
                     "--model", model, "--peft", "prefix-tuning", "--output", "p", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "prefix-tuning does not work" in result.stderr and "use none or lora" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "p").exists()


# One method beyond none/lora per other task, each with the data layout that exercises it most.
OTHER_TASKS = {
    "token-classification": ("ner_conll.conll", "adalora"),
    "question-answering": ("squad_v2.json", "ia3"),
    "summarization": ("news_summaries.csv", "ia3"),
    "translation": ("wmt_en_de.jsonl", "prompt-tuning"),
    "text-generation": ("alpaca_mixed.jsonl", "p-tuning"),
}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(OTHER_TASKS))
def test_other_tasks_take_the_catalogue(task: str, tmp_path: Path) -> None:
    data, method = OTHER_TASKS[task]
    result = run_cli("new", "--task", task, "--data", str(DATA / data), "--peft", method,
                     "--output", "p", "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke["failures"]


def test_prompt_methods_for_token_tasks_are_refused_naming_one_that_works(tmp_path: Path) -> None:
    result = run_cli("new", "--task", "token-classification", "--data", str(DATA / "ner_conll.conll"),
                     "--peft", "p-tuning", "--output", "p", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "p-tuning does not work for token-classification" in result.stderr and "use none or lora" in result.stderr
    assert not (tmp_path / "p").exists()


LORA_VARIANTS = """
import json, sys, torch
from config import load_config
from model import build_model, load_tokenizer
from transformers import AutoModelForSequenceClassification
out = {}
for name, overrides in json.loads(sys.argv[1]).items():
    cfg = load_config(["model_name_or_path=../tiny", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg, load_tokenizer(cfg))
    layers = {n: m for n, m in model.named_modules() if hasattr(m, "lora_A")}
    first = next(iter(layers.values()))
    a = first.lora_A["default"].weight
    out[name] = {
        "targets": sorted(n.split(".")[-1] for n in layers),
        # The linear layers of the model before peft wrapped it, the classifier head aside.
        "linear": sum(isinstance(m, torch.nn.Linear) and not n.startswith("classifier")
                      for n, m in AutoModelForSequenceClassification.from_pretrained("../tiny").named_modules()),
        "scaling": first.scaling["default"],
        "delta": max((m.lora_B["default"].weight @ m.lora_A["default"].weight).abs().max().item()
                     for m in layers.values()),
        "b_norm": first.lora_B["default"].weight.norm().item(),
        "magnitudes": sum("lora_magnitude_vector" in n for n, _ in model.named_parameters()),
        "a_std": a.std().item(),
    }
print(json.dumps(out))
"""


@pytest.mark.slow
def test_lora_variants_set_what_peft_documents(tmp_path: Path) -> None:
    created = run_cli("new", "--task", "text-classification", "--data", str(DATA / "nli_pairs.jsonl"), "--peft", "lora",
                      "--output", "p", "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert created.returncode == 0, created.stderr
    project = tmp_path / "p"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    build = ("from pathlib import Path; from config import load_config; from tests.smoke import build_tiny_model; "
             "build_tiny_model(load_config([]), Path('../tiny'))")  # fmt: skip
    subprocess.run([sys.executable, "-c", build], cwd=project, env=env, check=True, capture_output=True)
    variants = {"default": [], "rslora": ["use_rslora=true"], "dora": ["use_dora=true"],
                "gaussian": ["init_lora_weights=gaussian"], "orthogonal": ["init_lora_weights=orthogonal"],
                "all": ["lora_target_modules=all-linear"]}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", LORA_VARIANTS, json.dumps(variants)], cwd=project, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # lora_alpha 16, r 8: LoRA scales the update by alpha / r, rsLoRA by alpha / sqrt(r).
    assert seen["default"]["scaling"] == pytest.approx(16 / 8)
    assert seen["rslora"]["scaling"] == pytest.approx(16 / 8**0.5)
    # Every initialisation starts at the base model: the update B @ A is zero.
    assert all(seen[name]["delta"] < 1e-6 for name in variants)
    # DoRA: one magnitude vector per adapted layer (query and value in 2 layers); plain LoRA has none.
    assert seen["dora"]["magnitudes"] == 4 and seen["default"]["magnitudes"] == 0
    assert seen["gaussian"]["a_std"] == pytest.approx(1 / 8, rel=0.2)  # A ~ N(0, 1/r)
    # Orthogonal: B is not zero, but its rows and A's come from orthogonal halves of one Q, so B @ A is.
    assert seen["default"]["b_norm"] == 0 < seen["orthogonal"]["b_norm"]
    # all-linear: every linear layer of the encoder (6 per block, the pooler), not the classifier head.
    assert len(seen["all"]["targets"]) == seen["all"]["linear"] == 2 * 6 + 1
    assert seen["default"]["targets"] == ["query", "query", "value", "value"]

    out = tmp_path / "run"
    settings = ["model_name_or_path=../tiny", f"output_dir={out}", "max_steps=2", "use_dora=true", "use_rslora=true",
                "lora_target_modules=all-linear", "report_to=none", "save_total_limit=0"]  # fmt: skip
    trained = subprocess.run([sys.executable, "train.py", *settings], cwd=project, env=env, capture_output=True,
                             text=True)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    saved = json.loads((out / "best" / "adapter_config.json").read_text())
    assert saved["use_dora"] is True and saved["use_rslora"] is True and len(saved["target_modules"]) == 2 * 6 + 1
    with pytest.raises(SpecError, match="`training.use_dora` applies to --peft lora only"):
        ProjectSpec(task="text-classification", train_data=DATA / "nli_pairs.jsonl", training={"use_dora": True})


PISSA_AGAINST_ITS_CHECKPOINT = """
import sys, torch
from safetensors.torch import load_file
from config import load_config
from model import build_model, load_tokenizer, load_trained
cfg = load_config(["model_name_or_path=../tiny", "init_lora_weights=" + sys.argv[2]])
tokenizer = load_tokenizer(cfg)
batch = tokenizer(["the cat sat on the mat", "a dog ran"], ["it sat", "it ran far"], padding=True, return_tensors="pt")
# The model as trained: PiSSA's residual base weights and the trained adapter, from the run's last checkpoint.
trained = build_model(cfg, tokenizer)
trained.load_state_dict(load_file(sys.argv[1] + "/checkpoints/step-4/model.safetensors"))
# The model as predict.py loads it: the unchanged base model and the converted adapter in best/.
loaded, _ = load_trained(sys.argv[1] + "/best")
with torch.no_grad():
    print(float((trained.eval()(**batch).logits - loaded(**batch).logits).abs().max()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_a_pissa_or_olora_adapter_is_saved_as_lora_that_applies_to_the_unchanged_base(init: str, tmp_path: Path):
    created = run_cli("new", "--task", "text-classification", "--data", str(DATA / "nli_pairs.jsonl"), "--peft", "lora",
                      "--output", "p", "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert created.returncode == 0, created.stderr
    project, out = tmp_path / "p", tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    build = ("from pathlib import Path; from config import load_config; from tests.smoke import build_tiny_model; "
             "build_tiny_model(load_config([]), Path('../tiny'))")  # fmt: skip
    subprocess.run([sys.executable, "-c", build], cwd=project, env=env, check=True, capture_output=True)
    settings = ["model_name_or_path=../tiny", f"output_dir={out}", "max_steps=4", "learning_rate=5e-2",
                f"init_lora_weights={init}", "report_to=none", "batch_size=4"]  # fmt: skip
    trained = subprocess.run([sys.executable, "train.py", *settings], cwd=project, env=env, capture_output=True,
                             text=True)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["best_step"] == 4
    saved = json.loads((out / "best" / "adapter_config.json").read_text())
    # Converted: twice the rank (the trained adapter beside the negated start), alpha doubled to keep the scale.
    assert (saved["r"], saved["lora_alpha"], saved["init_lora_weights"]) == (16, 32, True)
    compared = subprocess.run([sys.executable, "-c", PISSA_AGAINST_ITS_CHECKPOINT, str(out), init], cwd=project,
                              env=env, capture_output=True, text=True)  # fmt: skip
    assert compared.returncode == 0, compared.stderr[-3000:]
    assert float(compared.stdout.strip().splitlines()[-1]) < 1e-4
