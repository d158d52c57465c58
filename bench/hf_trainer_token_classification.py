"""The reference side of the token-classification benchmark: the Hugging Face Trainer with run_ner.py's recipe
(words tokenized up front with is_split_into_words, each word's tag on its first sub-word and -100 on the rest,
DataCollatorForTokenClassification, AdamW with a linear schedule, seqeval entity F1).

    python hf_trainer_token_classification.py MODEL TRAIN_CONLL DEV_CONLL OUT_DIR SETTINGS_JSON
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
import torch
from seqeval.metrics import f1_score
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
)


def read_conll(path: str) -> list[tuple[list[str], list[str]]]:
    sentences, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        lines = [*f, "\n"]
    for line in lines:
        if line.strip():
            word, tag = line.split()
            words.append(word)
            tags.append(tag)
        elif words:
            sentences.append((words, tags))
            words, tags = [], []
    return sentences


class Encoded(torch.utils.data.Dataset):
    def __init__(self, sentences, tokenizer, label2id: dict[str, int], max_length: int) -> None:
        self.encodings = tokenizer([w for w, _ in sentences], is_split_into_words=True, truncation=True,
                                   max_length=max_length)  # fmt: skip
        self.labels = []
        for i, (_, tags) in enumerate(sentences):
            previous, labels = None, []
            for word in self.encodings.word_ids(i):
                labels.append(-100 if word is None or word == previous else label2id[tags[word]])
                previous = word
            self.labels.append(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {**{k: v[i] for k, v in self.encodings.items()}, "labels": self.labels[i]}


def main() -> None:
    model_name, train_file, dev_file, out, settings = sys.argv[1:6]
    s = json.loads(settings)
    train, dev = read_conll(train_file), read_conll(dev_file)
    labels = sorted({tag for _, tags in train for tag in tags})
    label2id = {name: i for i, name in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForTokenClassification.from_pretrained(
        model_name, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id, dtype=torch.float32
    )
    steps = math.ceil(len(train) / s["batch_size"]) * s["num_epochs"]
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
        disable_tqdm=True,
    )

    def metrics(p) -> dict:
        predicted = np.argmax(p.predictions, -1)
        gold, guess = [], []
        for row_pred, row_gold in zip(predicted, p.label_ids, strict=True):
            keep = row_gold != -100
            gold.append([labels[t] for t in row_gold[keep]])
            guess.append([labels[t] for t in row_pred[keep]])
        return {"f1": f1_score(gold, guess)}

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Encoded(train, tokenizer, label2id, s["max_length"]),
        eval_dataset=Encoded(dev, tokenizer, label2id, s["max_length"]),
        data_collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=metrics,
    )
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    evaluation = trainer.evaluate()
    print(json.dumps({"eval_f1": evaluation["eval_f1"],
                      "train_samples_per_second": result.metrics["train_samples_per_second"],
                      "train_runtime": seconds}))  # fmt: skip


if __name__ == "__main__":
    main()
