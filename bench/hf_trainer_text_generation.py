"""The reference side of the text-generation benchmark: the Hugging Face Trainer with peft LoRA, as instruction
tuning is usually written (alpaca prompt, the prompt's tokens labelled -100, DataCollatorForSeq2Seq padding,
AdamW with a linear schedule). Eval loss is the mean over every response token, as the project computes it.

    python hf_trainer_text_generation.py MODEL TRAIN_JSONL DEV_JSONL OUT_DIR SETTINGS_JSON
"""

from __future__ import annotations

import json
import math
import sys
import time

import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

PROMPT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
PROMPT_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def encode(rows: list[dict], tokenizer, max_length: int) -> list[dict]:
    examples = []
    for row in rows:
        prompt = (PROMPT if row["input"] else PROMPT_NO_INPUT).format(**row)
        text = prompt + row["output"] + tokenizer.eos_token
        enc = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
        pairs = zip(enc["input_ids"], enc["offset_mapping"], strict=True)
        labels = [token if end > len(prompt) else -100 for token, (_, end) in pairs]
        examples.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    return examples


def eval_loss(model, examples: list[dict], collator) -> float:
    """Cross-entropy summed over every learned token of the eval set, divided by their number."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), 16):
            batch = collator(examples[start : start + 16])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(), reduction="sum")
            total, count = total + loss.item(), count + int((labels != -100).sum())
    return total / count


def main() -> None:
    model_name, train_file, dev_file, out, settings = sys.argv[1:6]
    s = json.loads(settings)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    train = encode(read_jsonl(train_file), tokenizer, s["max_length"])
    dev = encode(read_jsonl(dev_file), tokenizer, s["max_length"])
    model = AutoModelForCausalLM.from_pretrained(model_name, dtype=torch.float32)
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=s["lora_r"], lora_alpha=s["lora_alpha"],
                      lora_dropout=s["lora_dropout"], target_modules=s["lora_target_modules"])  # fmt: skip
    model = get_peft_model(model, lora)
    steps = math.ceil(len(train) / s["batch_size"]) * s["num_epochs"]
    args = TrainingArguments(
        output_dir=out,
        num_train_epochs=s["num_epochs"],
        per_device_train_batch_size=s["batch_size"],
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
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    tokens = sum(len(e["input_ids"]) for e in train) * s["num_epochs"]
    print(json.dumps({"eval_loss": eval_loss(model, dev, collator),
                      "train_samples_per_second": result.metrics["train_samples_per_second"],
                      "train_tokens_per_second": tokens / result.metrics["train_runtime"],
                      "train_runtime": seconds}))  # fmt: skip


if __name__ == "__main__":
    main()
