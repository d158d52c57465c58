"""Real-looking instruction data for the text-generation benchmark (alpaca layout: instruction, input, output),
seeded: requests about bench/make_reviews.py's reviews, whose answers follow from the review, with the same long
tail of lengths. Also builds the decoder the benchmark fine-tunes (no pretrained decoder is available offline).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import make_reviews

TASKS = {
    "Classify the sentiment of this review as positive, negative or neutral.": "sentiment",
    "Which products or services does this review talk about?": "subjects",
    "Repeat the complaints in this review, one per line.": "complaints",
    "Write a short review with this sentiment.": "write",
}


def answer(kind: str, label: str, text: str) -> tuple[str, str]:
    """(input, output) for one request about a review of sentiment `label`."""
    sentences = re.findall(r"[^.]+\.", text)
    if kind == "sentiment":
        return text, label
    if kind == "subjects":
        subjects = [s.strip().split(" ")[0:2] for s in sentences]
        names = sorted({" ".join(words) for words in subjects if " ".join(words) in make_reviews.SUBJECTS})
        return text, ", ".join(names) or "None."
    if kind == "complaints":
        bad = [s.strip() for s in sentences if any(o in s for o in make_reviews.OPINIONS["negative"])]
        return text, "\n".join(bad) or "There are no complaints."
    return label, text


def write(path: Path, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(rows):
            instruction, kind = rng.choice(list(TASKS.items()))
            label = rng.choice(list(make_reviews.OPINIONS))
            context, output = answer(kind, label, make_reviews.review(rng, label))
            f.write(json.dumps({"instruction": instruction, "input": context, "output": output}) + "\n")
    return path


def write_decoder(folder: Path, corpus: Path, seed: int = 0) -> Path:
    """A randomly initialised Llama-style decoder (6 layers, width 512) with a byte-level BPE tokenizer trained on
    the corpus, saved as a model folder that `from_pretrained` reads, as a hub checkpoint would be."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [" ".join(json.loads(line).values()) for line in corpus.read_text(encoding="utf-8").splitlines()]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=["<|endoftext|>"], initial_alphabet=alphabet)
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    eos = tokenizer.eos_token_id
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=512, intermediate_size=1376, num_hidden_layers=6,
                         num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=1024,
                         bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=True)  # fmt: skip
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
