"""Evaluation: loss, entity precision / recall / F1 and token accuracy (seqeval), and a per-entity report.

An entity counts as found only when its type and its exact words match (CoNLL's conlleval rule). Scored on
words: each word's first sub-word, as training labels them.

Run on a saved model:  python evaluation.py outputs/best [DATA_FILE]   (default: the eval split of config.yaml)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import classification_report as tag_report
from torch.utils.data import DataLoader

from config import Config
from data import IGNORE

REPORT_FILE = "classification_report.txt"  # the best evaluation's report, which train.py writes to output_dir


def compute_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    return {
        "precision": precision_score(gold, predicted, zero_division=0),
        "recall": recall_score(gold, predicted, zero_division=0),
        "f1": f1_score(gold, predicted, zero_division=0),
        "accuracy": accuracy_score(gold, predicted),
    }


def report(gold: list[list[str]], predicted: list[list[str]]) -> str:
    """seqeval's per-entity report; per-tag scores over words when the tags name no entities (POS tags, ids)."""
    if get_entities(gold) or get_entities(predicted):
        return classification_report(gold, predicted, digits=4, zero_division=0)
    flat_gold, flat_predicted = sum(gold, []), sum(predicted, [])
    return "No B-/I- entity tags: scores per tag, over words.\n" + tag_report(
        flat_gold, flat_predicted, digits=4, zero_division=0
    )


def word_tags(labels: torch.Tensor, predictions: torch.Tensor, names: list[str]) -> tuple[list[str], list[str]]:
    """Gold and predicted tag names of one sentence's words (the positions whose label is not IGNORE)."""
    kept = labels != IGNORE
    return [names[i] for i in labels[kept].tolist()], [names[i] for i in predictions[kept].tolist()]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator, cfg: Config
) -> tuple[dict[str, float], str]:
    """Metrics over the whole eval set, prefixed `eval_`, and seqeval's per-entity report.

    Predictions are gathered from every process before anything is computed, so the numbers are exact under
    several GPUs too (gather_for_metrics drops the sentences that were repeated to even out the last batch).
    """
    model.eval()
    gold, predicted, loss_sum, word_count = [], [], 0.0, 0
    for batch in loader:
        labels = batch.pop("labels")
        # The loss is computed below, per sentence; the model only scores.
        logits = model(**batch).logits.float()
        # Summed per sentence, so the mean over all words is exact however the batches fall.
        losses = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none").sum(dim=1)
        counts = (labels != IGNORE).sum(dim=1)
        # Batches differ in length between processes: pad to a common one before gathering.
        predictions = accelerator.pad_across_processes(logits.argmax(dim=-1), dim=1, pad_index=IGNORE)
        labels = accelerator.pad_across_processes(labels, dim=1, pad_index=IGNORE)
        predictions, labels, losses, counts = accelerator.gather_for_metrics((predictions, labels, losses, counts))
        loss_sum += losses.sum().item()
        word_count += int(counts.sum().item())
        for sentence_labels, sentence_predictions in zip(labels.cpu(), predictions.cpu(), strict=True):
            gold_tags, predicted_tags = word_tags(sentence_labels, sentence_predictions, cfg.labels)
            gold.append(gold_tags)
            predicted.append(predicted_tags)
    model.train()
    # eval_samples shows that every sentence was scored exactly once, whatever the number of processes.
    metrics = {"loss": loss_sum / max(word_count, 1), "samples": len(gold)} | compute_metrics(gold, predicted)
    return {f"eval_{name}": value for name, value in metrics.items()}, report(gold, predicted)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from config import load_config
    from data import TokenClassificationDataset, build_collator, load_splits, read_records
    from model import load_trained

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("data_file", nargs="?", help="tagged data to evaluate on (default: the eval split)")
    args = parser.parse_args(argv)
    cfg = load_config([])
    accelerator = Accelerator()
    model, tokenizer = load_trained(args.model_dir)
    rows = read_records(args.data_file, cfg) if args.data_file else load_splits(cfg)[1]
    dataset = TokenClassificationDataset(rows, tokenizer, cfg)
    collator = build_collator(tokenizer, accelerator.device.type == "cuda")
    loader = DataLoader(dataset, batch_size=cfg.eval_batch_size, collate_fn=collator)
    model, loader = accelerator.prepare(model, loader)
    metrics, text = evaluate(model, loader, accelerator, cfg)
    accelerator.print(text)
    accelerator.print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
