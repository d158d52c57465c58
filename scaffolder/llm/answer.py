"""The model's answer: `{"files": [{"path": ..., "content": ...}]}`, read strictly.

A cut-off or unreadable answer is an `AnswerError` (the conversation may ask again). A path that leaves the
project, a file scaffolder does not write, or the API key in a file is an `UnsafeAnswer`: the whole answer is
rejected, because a model that writes one of them was misled and nothing else it wrote can be trusted either.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

RESPONSE_SCHEMA = {
    "type": "object",
    "properties": {
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["files"],
    "additionalProperties": False,
}
# What a project holds: text the checks can read. Anything else (shell scripts, binaries, .pth files) is refused.
ALLOWED_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".md", ".txt", ".cfg", ".json")
ALLOWED_NAMES = (".gitignore",)
MAX_FILE_CHARS = 200_000
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n(.*)\n```\s*$", re.DOTALL)


class AnswerError(Exception):
    """The answer cannot be read (cut off, not JSON, wrong shape); asking again may help."""


class UnsafeAnswer(Exception):
    """The answer breaks a rule no repair is asked for: it is rejected whole."""


def parse_answer(text: str, finish_reason: str | None) -> dict[str, str]:
    """{path: content} from an answer, in the answer's order."""
    if finish_reason == "length":
        raise AnswerError("the answer was cut off at the model's output limit")
    if finish_reason == "content_filter":
        raise AnswerError("the endpoint's content filter stopped the answer")
    data = _json(text)
    entries = data.get("files") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise AnswerError('the answer is JSON but not {"files": [{"path": ..., "content": ...}]}')
    files: dict[str, str] = {}
    for entry in entries:
        if not (isinstance(entry, dict) and all(isinstance(entry.get(key), str) for key in ("path", "content"))):
            raise AnswerError('every entry of "files" needs a string "path" and a string "content"')
        path = entry["path"]
        if path in files:
            raise UnsafeAnswer(f"the answer writes {path!r} twice")
        files[path] = entry["content"]
    return files


def _json(text: str) -> object:
    """The JSON object in the answer; servers without a JSON mode may wrap it in a code fence or a sentence."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    candidates = [stripped, fenced.group(1) if fenced else None]
    if "{" in stripped:
        candidates.append(stripped[stripped.index("{") : stripped.rindex("}") + 1])
    for candidate in candidates:
        if candidate:
            try:
                return json.loads(candidate)
            except json.JSONDecodeError:
                continue
    raise AnswerError("the answer is not JSON" if stripped else "the answer is empty")


def confine(files: dict[str, str], root: Path | None, secret: str = "") -> None:
    """Raise `UnsafeAnswer` unless every path stays inside the project as a plain relative file.

    `root` is the project on disk when there is one (regeneration): a path through a symbolic link that
    points out of it is refused too.
    """
    seen: set[str] = set()
    for path, content in files.items():
        problem = _path_problem(path) or _content_problem(content, secret)
        if problem is None and root is not None and not _resolves_inside(root, path):
            problem = "goes through a link out of the project"
        if problem is None and path.lower() in seen:
            problem = "is written twice (names differing only in case)"
        if problem:
            raise UnsafeAnswer(f"the answer's file {path[:80]!r} {problem}")
        seen.add(path.lower())


def _path_problem(path: str) -> str | None:
    if not path or len(path) > 200 or any(ord(c) < 32 or c in '\\:*?"<>|' for c in path):
        return "is not a plain relative path"
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~"):
        return "is absolute"
    if ".." in pure.parts:
        return "climbs out of the project (..)"
    if pure.as_posix() != path or "." in pure.parts:
        return "is not a normalised path (write it as a/b.py)"
    if any(part.lower() == ".git" for part in pure.parts):
        return "is inside .git"
    if not (pure.name in ALLOWED_NAMES or pure.suffix in ALLOWED_SUFFIXES):
        return f"is not one of the project's file types ({', '.join(ALLOWED_SUFFIXES)})"
    return None


def _content_problem(content: str, secret: str) -> str | None:
    if len(content) > MAX_FILE_CHARS:
        return f"is longer than {MAX_FILE_CHARS} characters"
    if secret and secret in content:
        return "holds the API key"
    return None


def _resolves_inside(root: Path, path: str) -> bool:
    resolved_root = root.resolve()
    target = (root / path).resolve()
    return target == resolved_root or resolved_root in target.parents
