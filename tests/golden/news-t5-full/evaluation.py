"""Evaluation: the loss on the references, then generated summaries scored with ROUGE (rouge-score).

Run on a saved model:  python evaluation.py outputs/best [DATA_FILE] [--output predictions.jsonl]
(default data: the eval split of config.yaml)
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from rouge_score import rouge_scorer, tokenizers
from torch.utils.data import DataLoader

from config import Config

REPORT_FILE = "eval_predictions.jsonl"  # the best evaluation's report, which train.py writes to output_dir

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# Scripts written without spaces between words (Thai, Lao, Khmer, Myanmar, Japanese kana, Chinese characters):
# each character is a token, as ROUGE is computed for Chinese.
UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD = re.compile(rf"[{UNSPACED}]|(?:(?![{UNSPACED}])[^\W_])+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")


class RougeTokenizer:
    """rouge-score's own tokenizer keeps only a-z and 0-9, so text in any other script would score 0.

    This one tokenizes ASCII words exactly as rouge-score does (lowercased, Porter-stemmed), keeps other words
    whole, and splits unspaced scripts into characters.
    """

    def __init__(self) -> None:
        self.ascii = tokenizers.DefaultTokenizer(use_stemmer=True)

    def tokenize(self, text: str) -> list[str]:
        tokens = []
        for word in WORD.findall(text.lower()):
            tokens += self.ascii.tokenize(word) if word.isascii() else [word]
        return tokens


def sentence_lines(text: str) -> str:
    """One sentence per line: rougeLsum scores a summary sentence by sentence, split at newlines."""
    return "\n".join(sentence for sentence in SENTENCE_END.split(text.strip()) if sentence)


def compute_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """ROUGE F1 x 100 per example, averaged over the examples (as summarization papers report it)."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=RougeTokenizer())
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(sentence_lines(reference), sentence_lines(prediction))
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {name: 100 * total / len(predictions) for name, total in totals.items()}


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator, cfg: Config
) -> tuple[dict[str, float], str]:
    """Metrics over the whole eval set, prefixed `eval_`, and every prediction with its reference as JSON lines.

    Per-example losses and generated ids are gathered from every process before anything is computed, so the
    numbers are exact under several GPUs too: gather_for_metrics keeps the eval set's order and drops the
    samples that were repeated to even out the last batch.
    """
    model.eval()
    dataset = loader.dataset
    pad_id = dataset.tokenizer.pad_token_id
    loss_sums, token_counts, generated = [], [], []
    for batch in loader:
        losses = accelerator.gather_for_metrics(example_losses(model, batch))
        loss_sums.append(losses[0].cpu())
        token_counts.append(losses[1].cpu())
        ids = generate(accelerator.unwrap_model(model, keep_torch_compile=False), batch, cfg)
        # Each process generates up to its own longest output: pad to a common width before gathering.
        ids = accelerator.pad_across_processes(ids, dim=1, pad_index=pad_id)
        generated += accelerator.gather_for_metrics(ids).cpu().tolist()
    model.train()
    predictions = dataset.tokenizer.batch_decode(generated, skip_special_tokens=True)
    metrics = {
        # Mean loss per target token over the whole set, however it was batched.
        "loss": (torch.cat(loss_sums).sum() / torch.cat(token_counts).sum()).item(),
        **compute_metrics(predictions, dataset.references),
        # Generated tokens per example (padding not counted): a model that stops too early or rambles shows here.
        "gen_len": sum(sum(token != pad_id for token in ids) for ids in generated) / len(generated),
        # eval_samples shows that every example was scored exactly once, whatever the number of processes.
        "samples": len(predictions),
    }
    pairs = zip(predictions, dataset.references, strict=True)
    report = "".join(json.dumps({"prediction": p, "reference": r}, ensure_ascii=False) + "\n" for p, r in pairs)
    return {f"eval_{name}": value for name, value in metrics.items()}, report


def example_losses(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss and target-token count of each example (labels of -100 are padding and count for nothing)."""
    logits = model(**batch).logits.float()
    labels = batch["labels"]
    token_losses = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
    return token_losses.sum(dim=1), (labels != -100).sum(dim=1)


def generate(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: Config) -> torch.Tensor:
    return model.generate(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        max_new_tokens=cfg.max_target_length,
        num_beams=cfg.num_beams,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from config import load_config
    from data import Seq2SeqDataset, build_collator, load_splits, read_records
    from model import load_trained

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("data_file", nargs="?", help="data with references to evaluate on (default: the eval split)")
    parser.add_argument("--output", help="write each prediction with its reference here, as JSON lines")
    args = parser.parse_args(argv)
    cfg = load_config([])
    accelerator = Accelerator()
    model, tokenizer = load_trained(args.model_dir)
    if args.data_file:  # a hub dataset or saved folder is read at its eval split
        rows = read_records(args.data_file, None, cfg.data_encoding, cfg.eval_split, cfg.dataset_revision)
    else:
        rows = load_splits(cfg)[1]
    collator = build_collator(tokenizer, accelerator.device.type == "cuda")
    loader = DataLoader(Seq2SeqDataset(rows, tokenizer, cfg), batch_size=cfg.eval_batch_size, collate_fn=collator)
    model, loader = accelerator.prepare(model, loader)
    metrics, predictions = evaluate(model, loader, accelerator, cfg)
    if args.output and accelerator.is_main_process:
        Path(args.output).write_text(predictions, encoding="utf-8")
    accelerator.print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
