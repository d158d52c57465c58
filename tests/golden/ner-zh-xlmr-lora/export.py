"""Merge the trained lora adapter into the base model and save it as a standalone model.

    python export.py outputs/best outputs/merged

The merged model loads with transformers alone (`AutoModelForTokenClassification.from_pretrained`), needs no peft at
inference time and runs as fast as the base model. predict.py and evaluation.py accept it in place of the adapter.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model import load_trained


def export(adapter_dir: str | Path, output_dir: str | Path) -> Path:
    model, tokenizer = load_trained(adapter_dir)
    # Folds the adapter into the base weights: the result is a plain transformers model.
    merged = model.merge_and_unload()
    merged.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return Path(output_dir)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("output_dir", help="where the merged model goes")
    args = parser.parse_args(argv)
    path = export(args.adapter_dir, args.output_dir)
    print(f"merged model written to {path}")
    return path


if __name__ == "__main__":
    main()
