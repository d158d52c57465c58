"""Real-looking named-entity data for the token-classification benchmark (CoNLL layout, B-/I- tags over PER, ORG,
LOC and MISC), seeded.

Sentences are built from clause patterns with entity slots, 1 to ~5 clauses drawn from a log-normal count (most
sentences short, a few long, as in news text), so padding behaves as it does on CoNLL-2003.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

ENTITIES = {
    "PER": ["Anna Schmidt", "John Smith", "Maria Garcia", "Wei Zhang", "Olga Petrova", "Ahmed Hassan", "Lee",
            "Sophie Martin", "Jordan", "Washington", "Paris Hilton", "Carlos Mendes", "Yuki Tanaka", "Peter",
            "Fatima Al Sayed", "David O'Brien"],
    "ORG": ["Siemens", "United Nations", "Reuters", "Bayern Munich", "Toyota Motor", "World Bank", "Google",
            "Deutsche Bank", "Real Madrid", "European Commission", "Nokia", "Georgia Power", "Paris Saint-Germain",
            "Airbus Group"],
    "LOC": ["Berlin", "New York", "Tokyo", "Rhine", "Brazil", "South Africa", "Paris", "Lake Geneva", "Shanghai",
            "Jordan", "Washington", "Georgia", "Texas", "Alps", "Nairobi", "Buenos Aires"],
    "MISC": ["German", "Olympic Games", "Christmas", "French", "World Cup", "Japanese", "Euro 2024", "Nobel Prize",
             "Chinese", "Tour de France", "British", "Ramadan"],
}  # fmt: skip
# {X} is an entity of type X; every other word is tagged O. Some names are several types (Jordan, Washington,
# Paris, Georgia), so the task is not solved by a word list alone.
CLAUSES = [
    "{PER} joined {ORG} in {LOC} last year", "{ORG} opened a new office in {LOC}", "{PER} said on Monday",
    "shares of {ORG} fell 3 percent", "{PER} won the {MISC} final", "the {MISC} delegation arrived in {LOC}",
    "{PER} met {PER} in {LOC}", "{ORG} and {ORG} signed a deal", "fans celebrated {MISC} in {LOC}",
    "{PER} , a spokesman for {ORG} , declined to comment", "rain is expected in {LOC} on Tuesday",
    "the match against {ORG} ended 2 - 1", "{MISC} exports to {LOC} rose sharply", "prices rose again",
    "{PER} will travel to {LOC} before {MISC}", "{ORG} reported a quarterly profit",
    "officials in {LOC} confirmed the figures", "{PER} , who grew up in {LOC} , now works for {ORG}",
]  # fmt: skip
LINKS = [", and", ", while", "; meanwhile", ", but", ", after"]


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    clauses = max(1, min(5, round(math.exp(rng.gauss(0.3, 0.5)))))
    words: list[tuple[str, str]] = []
    for i in range(clauses):
        if i:
            words += [(w, "O") for w in rng.choice(LINKS).split()]
        for part in rng.choice(CLAUSES).split():
            if part.startswith("{") and part.endswith("}"):
                kind = part[1:-1]
                # 3% of the entities carry another type, as annotators disagree: no model reaches F1 1.0.
                kind = rng.choice(list(ENTITIES)) if rng.random() < 0.03 else kind
                for j, word in enumerate(rng.choice(ENTITIES[part[1:-1]]).split()):
                    words.append((word, f"{'B' if j == 0 else 'I'}-{kind}"))
            else:
                words.append((part, "O"))
    words[0] = (words[0][0][:1].upper() + words[0][0][1:], words[0][1])
    return [*words, (".", "O")]


def write(path: Path, sentences: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(sentences):
            f.writelines(f"{word} {tag}\n" for word, tag in sentence(rng))
            f.write("\n")
    return path
