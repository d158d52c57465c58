"""Shared fixtures: data builders, an isolated git configuration, golden-file updates."""

from __future__ import annotations

import atexit
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import git
import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent

# The Arrow files that `datasets` prepares from the tests' data files go to a folder of this run (set before
# `datasets` is imported, and inherited by the projects' child processes), not to the user's cache.
_DATASETS_CACHE = tempfile.mkdtemp(prefix="scaffolder-tests-datasets-")
os.environ["HF_DATASETS_CACHE"] = _DATASETS_CACHE
atexit.register(shutil.rmtree, _DATASETS_CACHE, ignore_errors=True)
# Under pytest-xdist, each worker and the processes it starts compute on one thread: workers with a thread per
# core each oversubscribe the cores, and tiny models' small matrix products then slow down many times over.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden from the current render")


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the user's git config; commits get a fixed author."""
    home = tmp_path_factory.mktemp("git-home")
    config = home / "gitconfig"
    config.write_text("[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture
def write_file(tmp_path: Path):
    """write_file("name.csv", "text") -> path inside the test's temp dir."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def reviews_csv(rows: int = 30) -> str:
    lines = ["text,label"]
    for i in range(rows):
        label = ("positive", "negative", "neutral")[i % 3]
        lines.append(f'"review number {i}, it was {label}",{label}')
    return "\n".join(lines) + "\n"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`scaffold ARGS` in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "scaffolder", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )


def refusal(result: Any) -> str:
    """The one line a refused `scaffold new` prints (exit 2, no traceback)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def suggested_header(message: str) -> str:
    found = re.search(r"--header (\S+)", message)
    assert found, message
    return found.group(1)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project scaffolded from sst_like.tsv through the CLI, without a smoke run: tmp_path / "p"."""
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / "sst_like.tsv"), "--output", "p",
                     "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return tmp_path / "p"


def edit(project: Path, path: str, old: str, new: str) -> None:
    """Replace the first `old` in a project file, as a user's edit; `old` must be there."""
    file = project / path
    assert old in file.read_text(), old
    file.write_text(file.read_text().replace(old, new, 1))


def commit_all(project: Path, message: str = "my edits") -> str:
    repo = git.Repo(project)
    repo.git.add("--all")
    repo.git.commit("-qm", message)
    return repo.head.commit.hexsha


class Rendered(NamedTuple):
    data: ModuleType  # the project's data.py, imported
    cfg: Any  # its config.yaml as load_config reads it (with the overrides)
    plan: Any
    folder: Path


# The project's own top-level modules (and its tests package): forgotten between renders, so each test imports
# the project it rendered.
PROJECT_MODULES = ("config", "data", "model", "evaluation", "predict", "train")


def _forget_project_modules() -> None:
    for name in [m for m in sys.modules if m in PROJECT_MODULES or m == "tests" or m.startswith("tests.")]:
        sys.modules.pop(name)


@pytest.fixture
def render_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Rendered]]:
    """render_project(task, train data, *overrides, eval_data=None, **spec fields) -> Rendered: a project rendered
    in-process into tmp_path / "project", its modules importable (the probe and data.py compared in one process)."""
    from scaffolder import render
    from scaffolder.plan import build_plan
    from scaffolder.spec import ProjectSpec

    def build(task: str, train_data: Path, *overrides: str, eval_data: Path | None = None, **spec: Any) -> Rendered:
        plan = build_plan(ProjectSpec(task=task, train_data=train_data, eval_data=eval_data, **spec))
        folder = tmp_path / "project"
        for relative, text in render.render(plan, folder).items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text, encoding="utf-8")
        monkeypatch.syspath_prepend(str(folder))
        _forget_project_modules()
        config = importlib.import_module("config")
        cfg = config.load_config(list(overrides), folder / "config.yaml")
        return Rendered(importlib.import_module("data"), cfg, plan, folder)

    yield build
    _forget_project_modules()


def hub_dataset_in_cache(
    hf_home: Path, repo_id: str, splits: dict[str, list[dict[str, Any]]], features: Any = None
) -> str:
    """Lay out the hub dataset `repo_id` (owner/name) under hf_home as `datasets` leaves it after an online
    `load_dataset(repo_id)`: prepared Arrow files in its datasets cache, at a commit of the repository. With
    HF_HOME=hf_home and HF_HUB_OFFLINE=1, `load_dataset(repo_id, split=...)` then reads it through the library's
    own offline path (its cached-dataset fallback), as on a machine that downloaded it before. Returns the
    commit (the folder name a real download leaves)."""
    from datasets.packaged_modules.json.json import Json

    owner, name = repo_id.split("/")
    commit = "0123456789abcdef0123456789abcdef01234567"
    sources = hf_home / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, rows in splits.items():
        files[split] = str(sources / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    cache = hf_home / "datasets"
    builder = Json(
        cache_dir=str(cache), data_files=files, dataset_name=f"{owner}___{name}", hash=commit, features=features
    )
    builder.download_and_prepare()
    prepared = Path(builder.cache_dir)
    # The layout of a hub download: config `default`, Arrow files named after the dataset, not the builder.
    target = cache / f"{owner}___{name}" / "default" / prepared.parent.name / commit
    target.parent.mkdir(parents=True, exist_ok=True)
    prepared.rename(target)
    for arrow in target.glob("*.arrow"):
        arrow.rename(target / arrow.name.replace(f"{owner}___{name}-", f"{name}-"))
    info = json.loads((target / "dataset_info.json").read_text(encoding="utf-8"))
    info.update(config_name="default", dataset_name=name)
    for split in info["splits"].values():
        split["dataset_name"] = name
    (target / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return commit
