"""Real-looking review data for the benchmarks: three classes, mixed sentiment, label noise, a long tail of
lengths, seeded.

Reviews are built from sentence pools per sentiment, with 1 to ~12 sentences drawn from a log-normal length
distribution (most reviews short, a few long, as on review sites), so padding behaves as it does on real data.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

SUBJECTS = ["The battery", "This blender", "The hotel room", "Customer support", "The delivery", "The screen",
            "This jacket", "The app", "The coffee maker", "The headphones", "Our waiter", "The checkout",
            "The mattress", "This novel", "The rental car", "The sound", "The packaging", "The vacuum",
            "The keyboard", "The camera", "The lens", "The charger", "The instructions", "The price"]  # fmt: skip
OPINIONS = {
    "positive": ["works perfectly and exceeded my expectations", "is fantastic, I would buy it again",
                 "was friendly, fast and genuinely helpful", "feels premium and sturdy", "arrived early and intact",
                 "is a joy to use every day", "made the whole trip wonderful", "is excellent value",
                 "is brilliant, highly recommended", "impressed the whole family", "is better than advertised"],
    "negative": ["stopped working after two days", "is a complete waste of money", "was rude and unhelpful",
                 "feels cheap and broke quickly", "arrived late and damaged", "keeps crashing",
                 "ruined our weekend", "is overpriced and disappointing", "smells awful, I returned it",
                 "is the worst purchase I made this year", "never did what the listing promised"],
    "neutral": ["is okay, nothing special", "does what it says, no more", "was average for the price",
                "is fine but the manual is confusing", "arrived on the expected date", "is like the old model",
                "has a few pros and a few cons", "works, although setup took a while", "is acceptable",
                "meets the basic requirements", "is neither great nor bad"],
}  # fmt: skip
FILLER = ["I bought it last month.", "We use it at home.", "It was a gift.", "Shipping took four days.",
          "The box was plain.", "I compared three brands before.", "My partner chose the colour.",
          "We will see how it lasts.", "I read the reviews first.", "It came with a cable."]  # fmt: skip


def review(rng: random.Random, label: str) -> str:
    """Sentences mostly of the review's sentiment, some of another (real reviews are mixed), some filler."""
    sentences = max(1, min(12, round(math.exp(rng.gauss(0.6, 0.7)))))
    parts = []
    for _ in range(sentences):
        if parts and rng.random() < 0.35:
            parts.append(rng.choice(FILLER))
        else:
            mood = label if rng.random() < 0.7 else rng.choice(list(OPINIONS))
            parts.append(f"{rng.choice(SUBJECTS)} {rng.choice(OPINIONS[mood])}.")
    return " ".join(parts)


def write(path: Path, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    labels = list(OPINIONS)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(rows):
            label = rng.choice(labels)
            text = review(rng, label)
            # 5% of the labels are wrong, as in crowd-labelled data: no model reaches 100%.
            writer.writerow([text, rng.choice(labels) if rng.random() < 0.05 else label])
    return path
