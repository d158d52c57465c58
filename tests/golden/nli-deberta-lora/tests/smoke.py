"""Offline smoke run: this project's own train, evaluate and predict code on a tiny deberta-v2 model.

A randomly initialised deberta-v2 of a few thousand parameters is built from a config (nothing is
downloaded) and trained for a few epochs on a small slice of the real data. The run passes when the loss is
finite and falls, evaluation yields its metrics, and the saved model reloads and scores the eval slice exactly
as training measured it.

    python -m tests.smoke [--workdir DIR] [--json]
"""

from __future__ import annotations

import os

# Never download during a smoke run: the model's own tokenizer is used only when it is on disk already.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from torch.utils.data import DataLoader
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerFast

import train
from config import Config, load_config
from data import TextClassificationDataset, build_collator, load_splits
from evaluate import evaluate
from model import load_trained
from predict import Classifier

MODEL_TYPE = "deberta-v2"
TINY_CONFIG = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
TOKENIZER_INPUTS = ["input_ids", "token_type_ids", "attention_mask"]
# A small slice, many passes and a high learning rate: a random tiny model must visibly learn in seconds.
SMOKE_SETTINGS = {
    "max_train_samples": 32,
    "max_eval_samples": 32,
    "num_epochs": 16,
    "batch_size": 8,
    "learning_rate": 0.05,
    "warmup_ratio": 0.0,
    "logging_steps": 1,
    "max_length": 64,
    "mixed_precision": "no",
}
LOSS_DROP = 0.05  # the last quarter of the steps must average at least 5% below the first quarter


def smoke_tokenizer(cfg: Config, texts: list[str]) -> PreTrainedTokenizerFast:
    """The model's own tokenizer when it loads without a download, else a small WordPiece trained on the data."""
    try:
        return AutoTokenizer.from_pretrained(cfg.model_name_or_path)
    except (OSError, ValueError):
        return train_tokenizer(texts)


def train_tokenizer(texts: list[str], vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # BertNormalizer puts spaces around CJK characters, so Chinese or Japanese text splits into characters.
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=TOKENIZER_INPUTS,
    )


def build_tiny_model(cfg: Config, directory: Path) -> None:
    rows = load_splits(cfg)[0]
    texts = [str(row[cfg.text_column]) for row in rows]
    texts += [str(row[cfg.text_pair_column]) for row in rows]
    tokenizer = smoke_tokenizer(cfg, texts)
    config = AutoConfig.for_model(
        MODEL_TYPE,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(cfg.labels),
        **TINY_CONFIG,
    )
    AutoModelForSequenceClassification.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def run(workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    settings = {**SMOKE_SETTINGS, "output_dir": str(workdir / "outputs")}
    base = load_config([f"{key}={value}" for key, value in settings.items()])
    model_dir = workdir / "tiny-model"
    build_tiny_model(base, model_dir)
    overrides = [f"{key}={value}" for key, value in {**settings, "model_name_or_path": str(model_dir)}.items()]
    cfg = load_config(overrides)
    metrics = train.main(overrides)
    history = [json.loads(line) for line in (workdir / "outputs" / "log_history.jsonl").read_text().splitlines()]
    losses = [record["loss"] for record in history if "loss" in record]
    failures = check_losses(losses) + check_metrics(metrics) + check_reload(cfg, workdir / "outputs", metrics)
    return {
        "passed": not failures,
        "failures": failures,
        "losses": losses,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 2),
    }


def check_losses(losses: list[float]) -> list[str]:
    if len(losses) < 4:
        return [f"only {len(losses)} losses were logged; expected one per step"]
    if not all(math.isfinite(loss) for loss in losses):
        return [f"the loss is not finite: {losses}"]
    quarter = len(losses) // 4
    first, last = sum(losses[:quarter]) / quarter, sum(losses[-quarter:]) / quarter
    # A clear margin: noise alone moves a flat loss by a few percent, so `last < first` would let a model
    # that does not learn pass half the time.
    if last > (1 - LOSS_DROP) * first:
        return [f"the loss did not fall by {LOSS_DROP:.0%}: first steps {first:.4f}, last steps {last:.4f}"]
    return []


def check_metrics(metrics: dict[str, Any]) -> list[str]:
    expected = ["eval_loss", "eval_accuracy", "eval_macro_f1", "train_samples_per_second"]
    missing = [name for name in expected if name not in metrics]
    return [f"metrics.json lacks {', '.join(missing)}"] if missing else []


def check_reload(cfg: Config, output_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """The saved best model, reloaded from disk, scores the eval slice as training did and predicts labels."""
    model, tokenizer = load_trained(output_dir / "best")
    eval_rows = load_splits(cfg)[1]
    loader = DataLoader(
        TextClassificationDataset(eval_rows, tokenizer, cfg),
        batch_size=cfg.eval_batch_size,
        collate_fn=build_collator(tokenizer, on_gpu=False),
    )
    reloaded, _ = evaluate(model, loader, Accelerator(cpu=True), cfg.labels)
    failures = []
    if abs(reloaded["eval_loss"] - metrics["eval_loss"]) > 1e-4:
        failures.append(
            f"the reloaded model scores eval_loss {reloaded['eval_loss']:.6f}, training saved "
            f"{metrics['eval_loss']:.6f}: the saved model is not the trained one"
        )
    inputs = [(str(row[cfg.text_column]), str(row[cfg.text_pair_column])) for row in eval_rows[:4]]
    predictions = Classifier(output_dir / "best", device="cpu")(inputs)
    if any(p["label"] not in cfg.labels or abs(sum(p["scores"].values()) - 1) > 1e-4 for p in predictions):
        failures.append(f"predict.py returned labels outside config.yaml or bad scores: {predictions}")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where the tiny model and outputs go (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smoke-") as tmp:
        result = run(args.workdir or Path(tmp))
    if args.json:
        print(json.dumps(result))
    else:
        print("smoke run " + ("passed" if result["passed"] else "FAILED: " + "; ".join(result["failures"])))
    raise SystemExit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
