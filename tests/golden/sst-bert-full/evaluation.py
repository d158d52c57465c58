"""Evaluation: loss, accuracy, macro/weighted F1 and a per-class report.

Run on a saved model:  python evaluation.py outputs/best [DATA_FILE]   (default: the eval split of config.yaml)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from sklearn.metrics import accuracy_score, classification_report, f1_score
from torch.utils.data import DataLoader

from config import Config

REPORT_FILE = "classification_report.txt"  # the best evaluation's report, which train.py writes to output_dir


def score(logits: torch.Tensor, labels: torch.Tensor, cfg: Config) -> tuple[dict[str, float], str]:
    predictions, targets = logits.argmax(dim=-1).tolist(), labels.tolist()
    classes = range(len(cfg.labels))
    metrics = {
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": accuracy_score(targets, predictions),
        "macro_f1": f1_score(targets, predictions, average="macro", labels=classes, zero_division=0),
        "weighted_f1": f1_score(targets, predictions, average="weighted", zero_division=0),
    }
    text = classification_report(
        targets, predictions, labels=classes, target_names=cfg.labels, digits=4, zero_division=0
    )
    return metrics, text


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator, cfg: Config
) -> tuple[dict[str, float], str]:
    """Metrics over the whole eval set, prefixed `eval_`, and a readable report.

    Logits are gathered from every process before anything is computed, so the numbers are exact under
    several GPUs too (gather_for_metrics drops the samples that were repeated to even out the last batch).
    """
    model.eval()
    all_logits, all_labels = [], []
    for batch in loader:
        labels = batch.pop("labels")
        # The loss is computed below from all the logits at once; the model only scores.
        logits = model(**batch).logits.float()
        logits, labels = accelerator.gather_for_metrics((logits, labels))
        all_logits.append(logits.cpu())
        all_labels.append(labels.cpu())
    model.train()
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    metrics, text = score(logits, labels, cfg)
    # eval_samples shows that every example was scored exactly once, whatever the number of processes.
    metrics["samples"] = len(labels)
    return {f"eval_{name}": value for name, value in metrics.items()}, text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from config import load_config
    from data import TextClassificationDataset, build_collator, load_splits, read_records
    from model import load_trained

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("data_file", nargs="?", help="labelled data to evaluate on (default: the eval split)")
    args = parser.parse_args(argv)
    cfg = load_config([])
    accelerator = Accelerator()
    model, tokenizer = load_trained(args.model_dir)
    if args.data_file:  # a hub dataset or saved folder is read at its eval split
        # Laid out as the training data (config.yaml's `header` names the columns of a file without a header row).
        rows = read_records(args.data_file, None, cfg.data_encoding, cfg.eval_split, cfg.dataset_revision, cfg.header)
    else:
        rows = load_splits(cfg)[1]
    dataset = TextClassificationDataset(rows, tokenizer, cfg)
    collator = build_collator(tokenizer, accelerator.device.type == "cuda")
    loader = DataLoader(dataset, batch_size=cfg.eval_batch_size, collate_fn=collator)
    model, loader = accelerator.prepare(model, loader)
    metrics, text = evaluate(model, loader, accelerator, cfg)
    accelerator.print(text)
    accelerator.print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
