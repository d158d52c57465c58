"""The LLM path: write the project with any OpenAI-compatible model, then check, repair, or fall back.

client.py (the endpoint and the bounded chat call), answer.py (reading the JSON answer strictly, paths
confined), prompts.py (messages from templates/prompts/), generate.py (the rounds and the fallback).
Nothing here imports `openai` until a call is made.
"""

from __future__ import annotations

import importlib.util

from scaffolder.errors import MissingToolError, SpecError
from scaffolder.llm.client import OPENAI_MISSING, Endpoint, endpoint_from_env
from scaffolder.llm.generate import LLMGenerator

__all__ = ["Endpoint", "LLMGenerator", "llm_generator"]


def llm_generator(model: str | None, base_url: str | None, instructions: str | None) -> LLMGenerator | None:
    """The generator the flags ask for (None: the Jinja render); every setting checked before any work starts."""
    if model is None:
        if instructions or base_url:
            raise SpecError("--instructions and --llm-base-url need --llm MODEL (e.g. --llm gpt-4o-mini)")
        return None
    endpoint = endpoint_from_env(model, base_url)
    if importlib.util.find_spec("openai") is None:
        raise MissingToolError(OPENAI_MISSING)
    return LLMGenerator(endpoint, (instructions or "").strip())
