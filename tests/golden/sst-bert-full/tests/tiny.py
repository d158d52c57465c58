"""A tiny bert for offline smoke runs, and the checks every smoke run makes.

The model is built from a config (a few thousand parameters, random weights: nothing is downloaded). Its
tokenizer is the real one when it is on disk already, else a small one trained on the data in a second.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast, set_seed

import train
from config import Config, load_config

MODEL_TYPE = "bert"
ARCHITECTURE = "encoder"
TINY_CONFIG = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
TOKENIZER_INPUTS = ["input_ids", "token_type_ids", "attention_mask"]
# A small slice, many passes and a high learning rate: a random tiny model must visibly learn in seconds.
SMOKE_SETTINGS = {
    "max_train_samples": 32,
    "max_eval_samples": 32,
    "num_epochs": 16,
    "batch_size": 8,
    # 4 batches an epoch: grouped by length they would be the same 4 batches every epoch, which on real data
    # grouping never makes. Windows of one batch keep their composition random and still run the grouping code.
    "length_group_batches": 1,
    "learning_rate": 0.01,
    "warmup_ratio": 0.0,
    "logging_steps": 1,
    "max_length": 64,
    "mixed_precision": "no",
}
LOSS_DROP = 0.05  # the last quarter of the steps must average this much below the first
# The modules of a task head, as transformers names them across families (the span head is qa_outputs).
HEAD_MODULES = ("classifier", "score", "qa_outputs")


def smoke_config(workdir: Path, **settings: Any) -> Config:
    """config.yaml with the smoke settings (and any task-specific ones) applied, writing into workdir."""
    values = {**SMOKE_SETTINGS, **settings, "output_dir": str(workdir / "outputs")}
    return load_config([f"{key}={value}" for key, value in values.items()])


def smoke_tokenizer(cfg: Config, texts: list[str]) -> PreTrainedTokenizerBase:
    """The model's own tokenizer when it loads without a download, else a small one trained on the data."""
    try:
        return AutoTokenizer.from_pretrained(cfg.model_name_or_path)
    except (OSError, ValueError):
        return train_wordpiece(texts) if ARCHITECTURE == "encoder" else train_bpe(texts)


def train_wordpiece(texts: list[str], vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """A BERT-style tokenizer: [CLS] text [SEP] (text pair) [SEP].

    Its vocabulary is every character seen (alone and as a `##` continuation) and the most frequent words, ties
    broken alphabetically. tokenizers' WordPieceTrainer is not used: its vocabulary and ids change from one
    process to the next, and the smoke run's loss with them.
    """
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # BertNormalizer puts spaces around CJK characters, so Chinese or Japanese text splits into characters.
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=False), pre_tokenizers.BertPreTokenizer()
    words = Counter(
        word for text in texts for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    )
    characters = sorted({character for word in words for character in word})
    pieces = [*specials, *characters, *(f"##{character}" for character in characters)]
    by_count = sorted((word for word in words if len(word) > 1), key=lambda word: (-words[word], word))
    vocab = {token: i for i, token in enumerate([*pieces, *by_count[: max(vocab_size - len(pieces), 0)]])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre_tokenizer
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


def train_bpe(texts: list[str], vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2, Llama, T5 and BART style models): any text, any script, no unknowns.

    Encoder-decoder models end every sequence with </s>, as their real tokenizers do; decoders add nothing
    (the project's data code appends the end-of-sequence token where a response ends).
    """
    specials = ["<pad>", "</s>", "<s>", "<unk>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer)
    if ARCHITECTURE == "encoder-decoder":
        eos_id = tokenizer.token_to_id("</s>")
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=[("</s>", eos_id)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="<s>",
        unk_token="<unk>",
        model_input_names=TOKENIZER_INPUTS,
    )


def save_tiny_model(auto_class: Any, tokenizer: PreTrainedTokenizerBase, directory: Path, **config: Any) -> None:
    """A randomly initialised model of the project's family, sized for the tokenizer, saved with it."""
    special_ids = {
        f"{name}_token_id": getattr(tokenizer, f"{name}_token_id")
        for name in ("pad", "bos", "eos")
        if getattr(tokenizer, f"{name}_token_id", None) is not None
    }
    model_config = AutoConfig.for_model(
        MODEL_TYPE, vocab_size=len(tokenizer), **special_ids, **{**TINY_CONFIG, **config}
    )
    auto_class.from_config(model_config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def train_tiny(cfg: Config, model_dir: Path) -> tuple[Config, dict[str, Any], list[float]]:
    """train.py on the tiny model with cfg's settings: the config it ran with, its metrics and its losses."""
    overrides = [f"{key}={value}" for key, value in {**cfg.to_dict(), "model_name_or_path": model_dir}.items()]
    overrides = [item for item in overrides if not item.endswith("=None")]
    trained = load_config(overrides)
    metrics = train.main(overrides)
    log_file = Path(trained.output_dir) / "log_history.jsonl"
    history = [json.loads(line) for line in log_file.read_text().splitlines()]
    return trained, metrics, [record["loss"] for record in history if "loss" in record]


def check_losses(losses: list[float]) -> list[str]:
    if len(losses) < 4:
        return [f"only {len(losses)} losses were logged; expected one per step"]
    if not all(math.isfinite(loss) for loss in losses):
        return [f"the loss is not finite: {losses}"]
    quarter = len(losses) // 4
    first, last = sum(losses[:quarter]) / quarter, sum(losses[-quarter:]) / quarter
    if first <= 0:  # a loss of 0 from the first step learns nothing: every target masked out of it
        return [f"the loss is {first:.4f} from the start: no target is learned (are they all masked out?)"]
    # A clear margin: noise alone moves a flat loss by a few percent, so `last < first` would let a model
    # that does not learn pass half the time.
    if last > (1 - LOSS_DROP) * first:
        return [f"the loss did not fall by {LOSS_DROP:.0%}: first steps {first:.4f}, last steps {last:.4f}"]
    return []


def check_metrics(metrics: dict[str, Any], expected: list[str]) -> list[str]:
    missing = [name for name in [*expected, "eval_loss", "train_samples_per_second"] if name not in metrics]
    return [f"metrics.json lacks {', '.join(missing)}"] if missing else []


def check_same_scores(reloaded: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    """The best model, reloaded from disk, scores the eval set as training measured it."""
    # Equal up to float32 rounding (a few parts in a million of the loss); the wrong model misses by far more.
    if math.isclose(reloaded["eval_loss"], trained["eval_loss"], rel_tol=1e-4, abs_tol=1e-4):
        return []
    return [
        f"the reloaded model scores eval_loss {reloaded['eval_loss']:.6f}, training saved "
        f"{trained['eval_loss']:.6f}: the saved model is not the trained one"
    ]


def check_head_trained(model_dir: Path, output_dir: Path) -> list[str]:
    """The saved task head differs from the tiny model's random one. A head that never trained (frozen, or left
    out of an adapter's modules_to_save) leaves a model that cannot have learned the task; the loss alone can
    still fall around it, as the body learns to fit a fixed random classifier."""
    initial = load_file(model_dir / "model.safetensors")
    saved: dict[str, torch.Tensor] = {}
    for file in sorted((output_dir / "best").glob("*.safetensors")):
        saved.update(load_file(file))
    # An adapter names the base model's weights under base_model.model. (LoRA, IA3) or base_model. (prompt tuning).
    head = {
        name.removeprefix("base_model.model.").removeprefix("base_model."): weights
        for name, weights in saved.items()
        if set(name.split(".")) & set(HEAD_MODULES)
    }
    compared = [name for name in head if name in initial]
    if not compared:
        return [f"the saved model has no task head ({', '.join(HEAD_MODULES)}) to compare with the tiny model's"]
    if all(torch.equal(head[name], initial[name]) for name in compared):
        return ["the task head did not train: its saved weights are the tiny model's random initial ones"]
    return []


def smoke_run(
    workdir: Path,
    build_tiny_model: Callable[[Config, Path], None],
    check_reload: Callable[[Config, Path, dict[str, Any]], list[str]],
    expected_metrics: list[str],
    **settings: Any,
) -> dict[str, Any]:
    """The run every task's smoke test makes: build the tiny model, train it with train.py, then check the loss,
    the metrics, that the task head trained and (task by task, `check_reload`) that the saved model reloads and predicts
    as trained."""
    started = time.perf_counter()
    cfg = smoke_config(workdir, **settings)
    set_seed(cfg.seed)  # the tiny model's random weights: a smoke run gives the same losses every time
    model_dir = workdir / "tiny-model"
    build_tiny_model(cfg, model_dir)
    cfg, metrics, losses = train_tiny(cfg, model_dir)
    failures = check_losses(losses) + check_metrics(metrics, expected_metrics)
    failures += check_reload(cfg, Path(cfg.output_dir), metrics)
    failures += check_head_trained(model_dir, Path(cfg.output_dir))
    return {
        "passed": not failures,
        "failures": failures,
        "losses": losses,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 2),
    }


def smoke_main(run: Any, doc: str | None) -> None:
    """The command line of tests/smoke.py: run into --workdir (default: a temporary folder) and report."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
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
