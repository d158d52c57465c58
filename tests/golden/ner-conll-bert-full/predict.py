"""Tag new text with a model saved by train.py, and read the entities off the tags.

    python predict.py outputs/best "a sentence to tag" ["another" ...]
    python predict.py outputs/best --file new.jsonl [--output predictions.jsonl]

Prints (or writes) one JSON object per input: its words, a tag per word, and the entities, each with its
type, text, word span [start_word, end_word) and, for raw text, character span [start, end) and a score (the
mean probability of its words' tags). Raw text is split into words at whitespace, and every Chinese or
Japanese character is a word of its own, as in character-tagged data. A --file is read like the training
data (data.read_records: its layout and the columns of config.yaml) and tagged word for word.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import torch

from model import load_trained

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for each word of a raw text; end is exclusive."""
    return [(match.group(), match.start(), match.end()) for match in WORD.finditer(text)]


def entity_type(tag: str) -> tuple[str, str | None]:
    """(prefix, type) of a tag: B-PER -> (B, PER), PER -> ("", PER), O -> ("", None)."""
    if tag == "O":
        return "", None
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash and len(prefix) == 1 else ("", tag)


def merge_entities(tags: list[str], scores: list[float]) -> list[dict[str, Any]]:
    """Runs of words with one entity type: B- starts an entity, I- continues it (a stray I- starts one, as
    conlleval reads it), O or another type ends it."""
    entities: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for index, tag in enumerate(tags):
        prefix, kind = entity_type(tag)
        if kind is None:
            current = None
            continue
        if current is None or prefix == "B" or kind != current["entity"]:
            current = {"entity": kind, "start_word": index, "end_word": index}
            entities.append(current)
        current["end_word"] = index + 1
    for entity in entities:
        span = scores[entity["start_word"] : entity["end_word"]]
        entity["score"] = sum(span) / len(span)
    return entities


class Tagger:
    """A trained model and its tokenizer: tags raw texts (`tagger(texts)`) or pre-split words (`tag_words`)."""

    def __init__(self, model_dir: str | Path, device: str | None = None) -> None:
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tokenizer = load_trained(model_dir)
        self.model.to(self.device)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def __call__(self, texts: list[str], batch_size: int = 32) -> list[dict[str, Any]]:
        words = [split_words(text) for text in texts]
        results = self.tag_words([[word for word, _, _ in spans] for spans in words], batch_size)
        for result, text, spans in zip(results, texts, words, strict=True):
            for entity in result["entities"]:
                entity["start"] = spans[entity["start_word"]][1]
                entity["end"] = spans[entity["end_word"] - 1][2]
                entity["text"] = text[entity["start"] : entity["end"]]
            result["text"] = text
        return results

    @torch.no_grad()
    def tag_words(self, sentences: list[list[str]], batch_size: int = 32) -> list[dict[str, Any]]:
        results = []
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start : start + batch_size]
            batch = self.tokenizer(chunk, is_split_into_words=True, truncation=True, padding=True, return_tensors="pt")
            probabilities = self.model(**batch.to(self.device)).logits.float().softmax(dim=-1).cpu()
            for index, words in enumerate(chunk):
                results.append(self._read_tags(words, batch.word_ids(index), probabilities[index]))
        return results

    def _read_tags(self, words: list[str], word_ids: list[int | None], probabilities: torch.Tensor) -> dict[str, Any]:
        """Each word's tag from its first sub-word, as training labels it."""
        first = {}
        for position, word in enumerate(word_ids):
            if word is not None and word not in first:
                first[word] = position
        # Words past max_length never reach the model: they are tagged O.
        tags, scores = [], []
        for word in range(len(words)):
            row = probabilities[first[word]] if word in first else None
            tags.append(self.labels[int(row.argmax())] if row is not None else "O")
            scores.append(float(row.max()) if row is not None else 0.0)
        entities = merge_entities(tags, scores)
        for entity in entities:
            entity["text"] = " ".join(words[entity["start_word"] : entity["end_word"]])
        return {"words": words, "tags": tags, "entities": entities}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("texts", nargs="*", help="raw texts to tag")
    parser.add_argument("--file", help="a data file laid out like the training data")
    parser.add_argument("--output", help="write JSON lines here instead of printing them")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    if not args.texts and not args.file:
        parser.error("give texts to tag or --file")
    tagger = Tagger(args.model_dir)
    if args.file:
        from config import load_config
        from data import read_records

        cfg = load_config([])
        sentences = [[str(token) for token in tokens] for tokens in read_records(args.file, cfg)["tokens"]]
        results = tagger.tag_words(sentences, batch_size=args.batch_size)
    else:
        results = tagger(args.texts, batch_size=args.batch_size)
    lines = "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results)
    if args.output:
        Path(args.output).write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    return results


if __name__ == "__main__":
    main()
