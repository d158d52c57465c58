"""The reference side of the benchmark: what a user would otherwise run, the Hugging Face Trainer
(run_glue.py's recipe: tokenize with datasets-style map up front, DataCollatorWithPadding, AdamW, linear schedule).

    python hf_trainer_text_classification.py MODEL TRAIN_CSV DEV_CSV OUT_DIR SETTINGS_JSON

SETTINGS_JSON may name text_column and label_column (default text, label) and group_by_length (default false).
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)


class Encoded(torch.utils.data.Dataset):
    def __init__(self, texts: list[str], labels: list[int], tokenizer, max_length: int) -> None:
        self.encodings = tokenizer(texts, truncation=True, max_length=max_length)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {**{k: v[i] for k, v in self.encodings.items()}, "labels": self.labels[i]}


def read_rows(path: str) -> list[dict[str, str]]:
    """csv, or tsv by its extension (GLUE's files): as run_glue.py's users read them."""
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t" if path.endswith(".tsv") else ","))


def encode(rows: list[dict[str, str]], text: str, label: str, label2id: dict[str, int], tokenizer, max_length: int):
    return Encoded([r[text] for r in rows], [label2id[r[label]] for r in rows], tokenizer, max_length)


def main() -> None:
    model_name, train_csv, dev_csv, out, settings = sys.argv[1:6]
    s = json.loads(settings)
    text, label = s.get("text_column", "text"), s.get("label_column", "label")
    train_rows, dev_rows = read_rows(train_csv), read_rows(dev_csv)
    labels = sorted({r[label] for r in train_rows})
    label2id = {name: i for i, name in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id, dtype=torch.float32
    )
    steps = math.ceil(len(train_rows) / s["batch_size"]) * s["num_epochs"]
    args = TrainingArguments(
        output_dir=out,
        num_train_epochs=s["num_epochs"],
        per_device_train_batch_size=s["batch_size"],
        per_device_eval_batch_size=64,
        learning_rate=s["learning_rate"],
        weight_decay=0.01,
        warmup_steps=int(s["warmup_ratio"] * steps),
        lr_scheduler_type="linear",
        eval_strategy="no",
        save_strategy="no",
        logging_steps=10,
        report_to=[],
        seed=s["seed"],
        train_sampling_strategy="group_by_length" if s.get("group_by_length") else "random",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=encode(train_rows, text, label, label2id, tokenizer, s["max_length"]),
        eval_dataset=encode(dev_rows, text, label, label2id, tokenizer, s["max_length"]),
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=lambda p: {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())},
    )
    started = time.perf_counter()
    train = trainer.train()
    seconds = time.perf_counter() - started
    metrics = trainer.evaluate()
    result = {
        "eval_accuracy": metrics["eval_accuracy"],
        "train_samples_per_second": train.metrics["train_samples_per_second"],
        "train_runtime": seconds,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
