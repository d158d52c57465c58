"""Answer new questions with a model saved by train.py: each answer is a span of the question's context.

    python predict.py outputs/best "a question" "the context that answers it" [QUESTION CONTEXT ...]
    python predict.py outputs/best --file new.jsonl [--output predictions.jsonl]

Prints (or writes) one JSON object per question: the answer, its score (probability of the span), and its
character span [start, end) in the context; an empty answer with null span when the model abstains (with
allow_unanswerable on). A --file is read like the training data (SQuAD json, json or jsonl); the windows and
answer limits are those of config.yaml.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from config import Config, load_config
from data import QuestionAnsweringDataset, as_examples, build_collator, read_examples
from evaluation import answers_for
from model import load_trained


class QuestionAnswerer:
    """A trained model and its tokenizer; call it with (question, context) pairs."""

    def __init__(self, model_dir: str | Path, cfg: Config | None = None, device: str | None = None) -> None:
        self.cfg = cfg or load_config([])
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tokenizer = load_trained(model_dir)
        self.model.to(self.device)

    def __call__(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> list[dict[str, Any]]:
        examples = [{"id": str(i), "question": q, "context": c, "answers": []} for i, (q, c) in enumerate(pairs)]
        return self.answer(as_examples(examples), batch_size)

    @torch.no_grad()
    def answer(self, examples: Dataset, batch_size: int = 32) -> list[dict[str, Any]]:
        """Answers for questions as data.py reads them (a Dataset of "id", "question", "context", "answers")."""
        dataset = QuestionAnsweringDataset(examples, self.tokenizer, self.cfg)
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=build_collator(self.tokenizer, on_gpu=False))
        start_logits: list[torch.Tensor] = []
        end_logits: list[torch.Tensor] = []
        for batch in loader:
            # Only the model's inputs: the answer positions in the batch are for training.
            inputs = {name: batch[name].to(self.device) for name in self.tokenizer.model_input_names}
            outputs = self.model(**inputs)
            start_logits += list(outputs.start_logits.float().cpu())
            end_logits += list(outputs.end_logits.float().cpu())
        answers = answers_for(dataset, start_logits, end_logits, self.cfg)
        asked = zip(examples["id"], examples["question"], answers, strict=True)
        return [{"id": qid, "question": question, **answer} for qid, question, answer in asked]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("texts", nargs="*", help="question and context, in pairs")
    parser.add_argument("--file", help="a data file of questions and contexts, read like the training data")
    parser.add_argument("--output", help="write JSON lines here instead of printing them")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    if args.file:
        qa = QuestionAnswerer(args.model_dir)
        results = qa.answer(read_examples(args.file, qa.cfg), batch_size=args.batch_size)
    elif args.texts and len(args.texts) % 2 == 0:
        pairs = list(zip(args.texts[::2], args.texts[1::2], strict=True))
        results = QuestionAnswerer(args.model_dir)(pairs, batch_size=args.batch_size)
    else:
        parser.error("give a question and its context (pairs: QUESTION CONTEXT ...) or --file")
    lines = "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results)
    if args.output:
        Path(args.output).write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    return results


if __name__ == "__main__":
    main()
