"""The project's own offline test: a short real training run on a tiny model (see tests/smoke.py)."""

from pathlib import Path

from tests.smoke import run


def test_smoke_run_trains_saves_and_reloads(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result["passed"], "; ".join(result["failures"])
