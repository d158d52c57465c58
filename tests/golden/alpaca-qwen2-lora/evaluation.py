"""Evaluation: the mean loss per response token and its perplexity.

Run on a saved model:  python evaluation.py outputs/best [DATA_FILE]   (default: the eval split of config.yaml)

The loss is averaged over every learned (response) token of the eval set, not per batch, so the number does
not depend on the batch size or on how the examples fall into batches; perplexity is exp(loss).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader

from config import Config

REPORT_FILE = "eval_report.txt"  # the best evaluation's report, which train.py writes to output_dir
IGNORE_INDEX = -100


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example: the summed loss of its learned tokens and their number (token t predicts token t + 1)."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    losses = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    return losses.sum(dim=1), (labels != IGNORE_INDEX).sum(dim=1)


def report(metrics: dict[str, float]) -> str:
    return (
        f"eval loss   {metrics['eval_loss']:.4f}  (mean over {metrics['eval_tokens']:,} "
        f"response tokens of {metrics['eval_samples']:,} examples)\n"
        f"perplexity  {metrics['eval_perplexity']:.4f}\n"
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator, cfg: Config
) -> tuple[dict[str, float], str]:
    """Loss and perplexity over the whole eval set, prefixed `eval_`, and a short report.

    Every process scores its shard; the per-example sums are gathered before they are added up, so the numbers
    are exact under several GPUs too (gather_for_metrics drops the examples repeated to even out the last batch).
    """
    model.eval()
    loss_sums, token_counts = [], []
    for batch in loader:
        # No labels passed: the model would average its own loss per batch, which is not needed here.
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        sums, counts = accelerator.gather_for_metrics(token_losses(logits, batch["labels"]))
        loss_sums.append(sums.double().cpu())
        token_counts.append(counts.cpu())
    model.train()
    tokens = int(torch.cat(token_counts).sum())
    loss = float(torch.cat(loss_sums).sum()) / max(tokens, 1)
    metrics = {
        "eval_loss": loss,
        # exp overflows past ~709; a model that bad has an infinite perplexity for every practical purpose.
        "eval_perplexity": math.exp(loss) if loss < 700 else math.inf,
        # eval_samples shows that every example was scored exactly once, whatever the number of processes.
        "eval_samples": len(torch.cat(token_counts)),
        "eval_tokens": tokens,
    }
    return metrics, report(metrics)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from config import load_config
    from data import build_collator, load_splits, make_dataset, read_records
    from model import load_trained

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("data_file", nargs="?", help="data read like train_file (default: the eval split)")
    args = parser.parse_args(argv)
    cfg = load_config([])
    accelerator = Accelerator()
    model, tokenizer = load_trained(args.model_dir)
    if args.data_file:  # read as train_file is; a hub dataset or saved folder at its eval split
        rows = read_records(args.data_file, None, cfg.data_encoding, cfg.eval_split, cfg.dataset_revision, cfg.header)
    else:
        rows = load_splits(cfg)[1]
    dataset = make_dataset(rows, tokenizer, cfg)
    collator = build_collator(tokenizer, accelerator.device.type == "cuda")
    loader = DataLoader(dataset, batch_size=cfg.eval_batch_size, collate_fn=collator)
    model, loader = accelerator.prepare(model, loader)
    metrics, text = evaluate(model, loader, accelerator, cfg)
    accelerator.print(text)
    accelerator.print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
