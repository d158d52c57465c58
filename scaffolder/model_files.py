"""Files of a model that are on disk already: a local model folder, or the Hugging Face cache's snapshot of an
earlier download. Read by the cache's documented layout (huggingface_hub's try_to_load_from_cache does the same)
because importing huggingface_hub takes longer than all the rest of planning; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path


def hub_cache() -> Path:
    """The hub cache folder, from the same variables huggingface_hub reads."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def model_file(model: str, name: str) -> Path | None:
    """`name` (config.json, tokenizer.json) of a local model folder or of the cache's `main` snapshot of a hub
    model; None when it is not on disk."""
    local = Path(model).expanduser()
    if local.is_dir():
        return local / name if (local / name).is_file() else None
    repo = hub_cache() / f"models--{model.replace('/', '--')}"
    try:
        revision = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return None
    found = repo / "snapshots" / revision / name
    return found if found.is_file() else None
