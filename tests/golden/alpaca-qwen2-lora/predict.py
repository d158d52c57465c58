"""Generate text with a model saved by train.py.

    python predict.py outputs/best "an instruction" ["another" ...] [--input TEXT]
    python predict.py outputs/best --file new.jsonl [--output generated.jsonl]
    python predict.py outputs/best --raw "a prompt, sent as written"

Instructions are formatted as in training (the chat template or prompt_template of config.yaml); a --file is
read like the training data (config.yaml's `header` names the columns of a csv or tsv without a header row),
and its responses, when present, are written next to the generations as `reference`.

Prints (or writes) one JSON object per input with the `generated` text. Greedy by default (deterministic);
--temperature above 0 samples. Defaults come from config.yaml (max_new_tokens, temperature, top_p).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from config import Config, load_config
from data import prompt_text, read_records, render, uses_chat_template
from model import load_trained


class Generator:
    """A trained model and its tokenizer; `respond` generates for a batch of inputs."""

    def __init__(self, model_dir: str | Path, cfg: Config | None = None, device: str | None = None) -> None:
        self.cfg = cfg or load_config([])
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tokenizer = load_trained(model_dir)
        self.model.to(self.device)
        # Batched generation pads on the left, so that every prompt ends right where its new tokens begin.
        self.tokenizer.padding_side = "left"
        self.stop_ids = stop_token_ids(self.tokenizer, self.cfg)

    @torch.no_grad()
    def complete(
        self, prompts: list[str], add_special_tokens: bool = True, batch_size: int = 8, **settings: Any
    ) -> list[str]:
        """The text generated after each prompt (prompts are sent as written). `settings`: max_new_tokens,
        temperature, top_p (config.yaml's values by default), and any other `generate` option (min_new_tokens,
        repetition_penalty, ...)."""
        generated = []
        for start in range(0, len(prompts), batch_size):
            batch = self.tokenizer(
                prompts[start : start + batch_size],
                add_special_tokens=add_special_tokens,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            output = self.model.generate(**batch, **self.generation_settings(**settings))
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            generated += self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return generated

    def generation_settings(
        self,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        temperature = self.cfg.temperature if temperature is None else temperature
        settings: dict[str, Any] = {
            **options,
            "max_new_tokens": max_new_tokens or self.cfg.max_new_tokens,
            "do_sample": temperature > 0,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if temperature > 0:
            settings |= {"temperature": temperature, "top_p": top_p or self.cfg.top_p}
        return settings

    def respond(
        self, instructions: list[str], inputs: list[str] | None = None, batch_size: int = 8, **settings: Any
    ) -> list[str]:
        """Responses to instructions (each with its input, or none), formatted as in training."""
        contexts = inputs or [""] * len(instructions)
        prompts = [
            prompt_text(self.tokenizer, self.cfg, instruction, context)
            for instruction, context in zip(instructions, contexts, strict=True)
        ]
        chat = uses_chat_template(self.tokenizer, self.cfg)
        return self.complete(prompts, add_special_tokens=not chat, batch_size=batch_size, **settings)


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, cfg: Config) -> list[int]:
    """End-of-text, plus the chat template's end-of-turn token when it is another one (a base model's
    template often ends turns with a token that is not its end-of-text)."""
    stop = [tokenizer.eos_token_id]
    if uses_chat_template(tokenizer, cfg):
        marker = "@@response@@"
        turn = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}]
        end = render(tokenizer, turn, generation_prompt=False).split(marker)[-1].strip()
        vocab = tokenizer.get_vocab()
        if end in vocab and vocab[end] not in stop:
            stop.append(vocab[end])
    return stop


def read_inputs(args: argparse.Namespace, cfg: Config) -> list[dict[str, Any]]:
    """One record per input: the instruction, its input and, from a --file, the reference response."""
    if not args.file:
        return [{"instruction": text, "input": args.input or ""} for text in args.texts]
    records = []
    # Laid out as the training data (config.yaml's `header` names the columns of a file without a header row).
    for row in read_records(args.file, encoding=cfg.data_encoding, header=cfg.header):
        record = {"instruction": str(row[cfg.instruction_column] or ""), "input": str(row.get(cfg.input_column) or "")}
        if row.get(cfg.response_column):
            record["reference"] = str(row[cfg.response_column])
        records.append(record)
    return records


def generate(generator: Generator, records: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    settings = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_p": args.top_p}
    if args.raw:
        return generator.complete([r["instruction"] for r in records], batch_size=args.batch_size, **settings)
    instructions = [r["instruction"] for r in records]
    inputs = [r["input"] for r in records]
    return generator.respond(instructions, inputs, batch_size=args.batch_size, **settings)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a directory written by train.py (e.g. outputs/best)")
    parser.add_argument("texts", nargs="*", help="instructions")
    parser.add_argument("--input", help="an input that goes with each instruction")
    parser.add_argument("--file", help="a data file read like train_file")
    parser.add_argument("--raw", action="store_true", help="send the texts as written, without the prompt format")
    parser.add_argument("--output", help="write JSON lines here instead of printing them")
    parser.add_argument("--max-new-tokens", type=int, help="default: config.yaml max_new_tokens")
    parser.add_argument("--temperature", type=float, help="0 = greedy; default: config.yaml temperature")
    parser.add_argument("--top-p", type=float, help="default: config.yaml top_p")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    cfg = load_config([])
    records = read_inputs(args, cfg)
    if not records:
        parser.error("give texts or --file")
    generated = generate(Generator(args.model_dir, cfg), records, args)
    results = [{**record, "generated": text} for record, text in zip(records, generated, strict=True)]
    lines = "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results)
    if args.output:
        Path(args.output).write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    return results


if __name__ == "__main__":
    main()
