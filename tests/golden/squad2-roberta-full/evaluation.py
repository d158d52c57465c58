"""Evaluation: loss, exact match and F1 against the gold answers (SQuAD's rules), and every prediction.

Answers are compared after SQuAD's normalisation (lowercase, no punctuation, no articles, single spaces),
each against its best-matching gold answer; an unanswerable question is right only when the answer is "".
Chinese and Japanese characters count as words of their own for F1 (those scripts do not separate words).

Run on a saved model:  python evaluation.py outputs/best [DATA_FILE] [--predictions FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader

from config import Config
from data import NO_ANSWER, QuestionAnsweringDataset

REPORT_FILE = "eval_predictions.jsonl"  # the best evaluation's report, which train.py writes to output_dir
PAD_LOGIT = -1e4  # fills windows shorter than the batch's longest; never a candidate (no offsets there)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# The official SQuAD script's punctuation: ASCII's only, so `$5` matches `5` and `C++` matches `C`.
_PUNCTUATION = frozenset(string.punctuation)


# --- answer selection -------------------------------------------------------------------------------------


def best_answer(
    windows: list[tuple[torch.Tensor, torch.Tensor, list[tuple[int, int] | None]]],
    context: str,
    cfg: Config,
) -> dict[str, Any]:
    """The best span over all windows of one question (start + end logit), or "" when the model's "no answer"
    score is higher and allow_unanswerable is on. `score` is the span's probability within its window."""
    best: dict[str, Any] = {"answer": "", "score": 0.0, "start": None, "end": None, "logit": -float("inf")}
    null_logit, null_score = float("inf"), 0.0
    for start_logits, end_logits, offsets in windows:
        start_logits, end_logits = start_logits[: len(offsets)], end_logits[: len(offsets)]
        start_probs, end_probs = start_logits.softmax(dim=-1), end_logits.softmax(dim=-1)
        window_null = float(start_logits[NO_ANSWER] + end_logits[NO_ANSWER])
        # The least confident window's "no answer" speaks for the question: one window that sees the answer
        # should win over all the windows that do not.
        if window_null < null_logit:
            null_logit, null_score = window_null, float(start_probs[NO_ANSWER] * end_probs[NO_ANSWER])
        for start, end in candidate_spans(start_logits, end_logits, offsets, cfg):
            logit = float(start_logits[start] + end_logits[end])
            if logit > best["logit"]:
                first, last = offsets[start][0], offsets[end][1]  # type: ignore[index]
                score = float(start_probs[start] * end_probs[end])
                best = {"answer": context[first:last], "score": score, "start": first, "end": last, "logit": logit}
    if cfg.allow_unanswerable and null_logit > best["logit"]:
        best = {"answer": "", "score": null_score, "start": None, "end": None, "logit": null_logit}
    del best["logit"]
    return best


def candidate_spans(
    start_logits: torch.Tensor, end_logits: torch.Tensor, offsets: list[tuple[int, int] | None], cfg: Config
) -> list[tuple[int, int]]:
    """(start, end) token pairs among the n_best starts and ends: inside the context, in order, not too long."""
    n_best = min(cfg.n_best, len(offsets))
    spans = []
    for start in start_logits.topk(n_best).indices.tolist():
        for end in end_logits.topk(n_best).indices.tolist():
            in_context = offsets[start] is not None and offsets[end] is not None
            if in_context and start <= end < start + cfg.max_answer_length:
                spans.append((start, end))
    return spans


def answers_for(
    dataset: QuestionAnsweringDataset, start_logits: list[torch.Tensor], end_logits: list[torch.Tensor], cfg: Config
) -> list[dict[str, Any]]:
    """One answer per question of the dataset, from the logits of its windows (in dataset order)."""
    windows: list[list[Any]] = [[] for _ in range(len(dataset.examples))]
    for index, (example, offsets) in enumerate(zip(dataset.example_ids, dataset.offsets, strict=True)):
        windows[example].append((start_logits[index], end_logits[index], offsets))
    return [best_answer(windows[i], context, cfg) for i, context in enumerate(dataset.examples["context"])]


# --- SQuAD metrics ----------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """SQuAD v2.0's official normalisation (evaluate-v2.0.py): lowercase, drop ASCII punctuation, drop the
    articles a/an/the, collapse whitespace. An extension for CJK text only: its punctuation (，。「」, fullwidth
    marks) goes too, as CMRC 2018's script drops it; other text scores exactly as the official script."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION and not _cjk_punctuation(ch))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _cjk_punctuation(char: str) -> bool:
    """A punctuation mark of the CJK Symbols and Punctuation block or of the fullwidth forms."""
    in_cjk_block = "\u3000" <= char <= "\u303f" or "\uff00" <= char <= "\uffef"
    return in_cjk_block and unicodedata.category(char).startswith("P")


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Word overlap of the normalized answers; an empty answer scores 1 only against an empty one."""
    predicted, expected = _WORD.findall(normalize_answer(prediction)), _WORD.findall(normalize_answer(gold))
    if not predicted or not expected:
        return float(predicted == expected)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def score_answers(examples: Iterable[dict[str, Any]], answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per question: the prediction, the gold answers, and its exact match and F1 against the best of them."""
    scored = []
    for example, answer in zip(examples, answers, strict=True):
        # As the official script: a gold answer that normalises to nothing ("The") is dropped; none left is "".
        golds = [gold["text"] for gold in example["answers"] if normalize_answer(gold["text"])] or [""]
        scored.append(
            {
                "id": example["id"],
                "question": example["question"],
                "prediction": answer["answer"],
                "score": answer["score"],
                "answers": golds,
                "exact_match": max(exact_match(answer["answer"], gold) for gold in golds),
                "f1": max(f1(answer["answer"], gold) for gold in golds),
            }
        )
    return scored


# --- evaluation -------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator, cfg: Config
) -> tuple[dict[str, float], str]:
    """Metrics over the whole eval set, prefixed `eval_`, and every prediction as JSON lines.

    Logits are gathered from every process before anything is computed, in the loader's order (it is not
    shuffled), so they line up with the dataset's windows and the numbers are exact under several GPUs too.
    """
    model.eval()
    start_logits: list[torch.Tensor] = []
    end_logits: list[torch.Tensor] = []
    loss_sum, window_count = 0.0, 0
    for batch in loader:
        start_positions, end_positions = batch.pop("start_positions"), batch.pop("end_positions")
        outputs = model(**batch)
        starts, ends = outputs.start_logits.float(), outputs.end_logits.float()
        # The model's loss, per window, so the mean over all windows is exact however the batches fall.
        losses = (
            F.cross_entropy(starts, start_positions, reduction="none")
            + F.cross_entropy(ends, end_positions, reduction="none")
        ) / 2
        # Batches differ in length between processes: pad to a common one before gathering.
        starts = accelerator.pad_across_processes(starts, dim=1, pad_index=PAD_LOGIT)
        ends = accelerator.pad_across_processes(ends, dim=1, pad_index=PAD_LOGIT)
        starts, ends, losses = accelerator.gather_for_metrics((starts, ends, losses))
        loss_sum += losses.sum().item()
        window_count += len(losses)
        start_logits += list(starts.cpu())
        end_logits += list(ends.cpu())
    model.train()
    dataset = loader.dataset
    scored = score_answers(dataset.examples, answers_for(dataset, start_logits, end_logits, cfg))
    # eval_samples shows that every question was answered exactly once, whatever the number of processes.
    metrics = {
        "loss": loss_sum / max(window_count, 1),
        "samples": len(scored),
        "exact_match": sum(s["exact_match"] for s in scored) / max(len(scored), 1),
        "f1": sum(s["f1"] for s in scored) / max(len(scored), 1),
    }
    report = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in scored)
    return {f"eval_{name}": value for name, value in metrics.items()}, report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from config import load_config
    from data import build_collator, load_splits, read_examples
    from model import load_trained

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("data_file", nargs="?", help="answered questions to evaluate on (default: the eval split)")
    parser.add_argument("--predictions", help="write every question's prediction and scores here (JSON lines)")
    args = parser.parse_args(argv)
    cfg = load_config([])
    accelerator = Accelerator()
    model, tokenizer = load_trained(args.model_dir)
    if args.data_file:  # a hub dataset or a saved DatasetDict is read at its eval_split, as eval_file would be
        examples = read_examples(args.data_file, cfg, split=cfg.eval_split, revision=cfg.dataset_revision)
    else:
        examples = load_splits(cfg)[1]
    dataset = QuestionAnsweringDataset(examples, tokenizer, cfg)
    collator = build_collator(tokenizer, accelerator.device.type == "cuda")
    loader = DataLoader(dataset, batch_size=cfg.eval_batch_size, collate_fn=collator)
    model, loader = accelerator.prepare(model, loader)
    metrics, predictions = evaluate(model, loader, accelerator, cfg)
    if args.predictions and accelerator.is_main_process:
        Path(args.predictions).write_text(predictions, encoding="utf-8")
    accelerator.print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
