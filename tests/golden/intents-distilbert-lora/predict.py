"""Classify new texts with a model saved by train.py.

    python predict.py outputs/best "a text" ["another" ...]
    python predict.py outputs/best --file new.csv [--output predictions.jsonl]

Prints (or writes) one JSON object per input: the label, its probability, and every class's probability.
A --file is read like the training data (csv, tsv, json or jsonl; config.yaml's `header` names the columns of
a csv or tsv without a header row) using the columns in config.yaml.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from model import load_trained


class Classifier:
    """A trained model and its tokenizer; call it with texts."""

    def __init__(self, model_dir: str | Path, device: str | None = None) -> None:
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tokenizer = load_trained(model_dir)
        self.model.to(self.device)
        config = self.model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]

    @torch.no_grad()
    def __call__(self, texts: list[str], batch_size: int = 32) -> list[dict[str, Any]]:
        results = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            batch = self.tokenizer(chunk, truncation=True, padding=True, return_tensors="pt")
            results += self._classify(batch)
        return results

    def _classify(self, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        logits = self.model(**batch.to(self.device)).logits.float().cpu()
        probabilities = logits.softmax(dim=-1)
        return [
            {
                "label": self.labels[int(row.argmax())],
                "score": float(row.max()),
                "scores": {label: float(p) for label, p in zip(self.labels, row, strict=True)},
            }
            for row in probabilities
        ]


def read_inputs(args: argparse.Namespace) -> list[Any]:
    if args.file:
        from config import load_config
        from data import read_records

        cfg = load_config([])
        # Laid out as the training data (config.yaml's `header` names the columns of a file without a header row).
        rows = read_records(args.file, encoding=cfg.data_encoding, header=cfg.header)
        return [str(r[cfg.text_column]) for r in rows]
    return args.texts


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("texts", nargs="*", help="texts to classify")
    parser.add_argument("--file", help="a data file with the text column(s) of config.yaml")
    parser.add_argument("--output", help="write JSON lines here instead of printing them")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    inputs = read_inputs(args)
    if not inputs:
        parser.error("give texts to classify or --file")
    results = Classifier(args.model_dir)(inputs, batch_size=args.batch_size)
    lines = "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results)
    if args.output:
        Path(args.output).write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    return results


if __name__ == "__main__":
    main()
