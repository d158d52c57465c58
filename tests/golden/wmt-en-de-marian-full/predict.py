"""Translate en text into de with a model saved by train.py.

    python predict.py outputs/best "a sentence" ["another sentence" ...]

    python predict.py outputs/best --file new.jsonl [--output predictions.jsonl]

Prints (or writes) one JSON object per input: {"translation": "..."}. A --file is read like the training data
(csv, tsv, json or jsonl) with the columns in config.yaml; the input prefix and the generation settings
(source_prefix, max_length, max_target_length, num_beams) come from config.yaml too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from config import Config, load_config
from data import read_records, source_texts
from model import load_trained


class Translator:
    """A trained model and its tokenizer; call it with en texts, get their de translations."""

    def __init__(self, model_dir: str | Path, cfg: Config | None = None, device: str | None = None) -> None:
        self.cfg = cfg or load_config([])
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tokenizer = load_trained(model_dir)
        self.model.to(self.device)

    @torch.no_grad()
    def __call__(self, texts: list[str], batch_size: int = 16) -> list[dict[str, str]]:
        results = []
        for start in range(0, len(texts), batch_size):
            # The same prefix and truncation as training: the model only knows inputs shaped like those.
            chunk = [self.cfg.source_prefix + text for text in texts[start : start + batch_size]]
            batch = self.tokenizer(
                chunk, truncation=True, max_length=self.cfg.max_length, padding=True, return_tensors="pt"
            )
            ids = self.model.generate(
                **batch.to(self.device), max_new_tokens=self.cfg.max_target_length, num_beams=self.cfg.num_beams
            )
            decoded = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
            results += [{"translation": text} for text in decoded]
        return results


def main(argv: list[str] | None = None) -> list[dict[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("texts", nargs="*", help="en texts to translate")
    parser.add_argument("--file", help="a data file laid out like the training data (config.yaml's columns)")
    parser.add_argument("--output", help="write JSON lines here instead of printing them")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    cfg = load_config([])
    texts = source_texts(read_records(args.file, encoding=cfg.data_encoding), cfg) if args.file else args.texts
    if not texts:
        parser.error("give texts to translate or --file")
    results = Translator(args.model_dir, cfg)(texts, batch_size=args.batch_size)
    lines = "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results)
    if args.output:
        Path(args.output).write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    return results


if __name__ == "__main__":
    main()
