"""Benchmark: a scaffolded text-generation project with LoRA against the Hugging Face Trainer with peft LoRA, same
model, data and hyperparameters (the LoRA settings are read from the project's config.yaml), in one run. Reports
the eval loss over response tokens, training samples/s and real (non-padding) tokens/s, peak memory, and ratios.

    python bench/text_generation.py [--rows 3000] [--epochs 1] [--repeats N]

No pretrained decoder is available offline, so both sides fine-tune the same randomly initialised Llama-style
model (6 layers, width 512, a BPE tokenizer trained on the data; bench/make_instructions.py), loaded from a folder
with `from_pretrained` as a hub checkpoint would be. Throughput does not depend on the weights' values; the loss
compares how far one epoch gets from the same start. Results: stdout, bench/results/text_generation.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import make_instructions
import yaml
from common import alternate, report, scaffold, scaffolded_side, trainer_side

SETTINGS = {"num_epochs": 1, "batch_size": 16, "learning_rate": 2e-4, "max_length": 256, "warmup_ratio": 0.06,
            "seed": 42}  # fmt: skip
REFERENCE = "hf_trainer_text_generation.py"
KEYS = {"eval_loss": "eval loss", "train_samples_per_second": "samples/s", "train_tokens_per_second": "tokens/s",
        "peak_mib": "peak MiB"}  # fmt: skip
LORA_KEYS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")


def lora_settings(model: Path, train: Path, work: Path) -> dict:
    """The LoRA settings scaffolder chose for this model (rank, alpha, dropout, target modules)."""
    scaffold(["--task", "text-generation", "--peft", "lora", "--data", str(train), "--model", str(model)], work)
    config = yaml.safe_load((work / "config.yaml").read_text())
    return {key: config[key] for key in LORA_KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, seeds 42, 43, ...")
    args = parser.parse_args()
    settings = {**SETTINGS, "num_epochs": args.epochs}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        train = make_instructions.write(root / "train.jsonl", args.rows, seed=1)
        dev = make_instructions.write(root / "dev.jsonl", max(300, args.rows // 6), seed=2)
        model = make_instructions.write_decoder(root / "decoder", train)
        lora = lora_settings(model, train, root / "settings")
        new_args = ["--task", "text-generation", "--peft", "lora", "--data", str(train), "--eval-data", str(dev),
                    "--model", str(model)]  # fmt: skip
        data = [str(model), str(train), str(dev)]
        sides = {
            "scaffolded": lambda work, seeded: scaffolded_side(new_args, work, seeded, KEYS),
            "hf_trainer": lambda work, seeded: trainer_side(REFERENCE, data, work, seeded | lora, KEYS),
        }
        rows = alternate(sides, args.repeats, root, settings)
    meta = {"model": "random-init Llama, 6 x 512", "rows": args.rows, "repeats": args.repeats, "settings": settings,
            "lora": lora}  # fmt: skip
    report("text_generation", rows, KEYS, "train_tokens_per_second", "eval_loss", meta)


if __name__ == "__main__":
    main()
