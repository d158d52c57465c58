"""The library API (scaffolder.pipeline) does what the CLI does, for a caller that is not the CLI: regen checks the
merged tree and records the outcome; model-written code is smoke-run only with the caller's consent."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import DATA
from scaffolder.generator import JinjaGenerator
from scaffolder.pipeline import new_project, regen_project
from scaffolder.plan import Plan
from scaffolder.provenance import GeneratorRecord
from scaffolder.regen import generations
from scaffolder.spec import ProjectSpec


class ModelWritten(JinjaGenerator):
    """The template render, recorded as if a model had written train.py (the LLM path's record)."""

    name = "llm"

    def generate(
        self, plan: Plan, project_dir: Path, previous: dict[str, str] | None = None
    ) -> tuple[dict[str, str], GeneratorRecord]:
        files, _ = super().generate(plan, project_dir, previous)
        return files, GeneratorRecord("llm", model="a-model", endpoint="localhost", model_files=["train.py"])


def spec() -> ProjectSpec:
    return ProjectSpec(task="text-classification", train_data=DATA / "sst_like.tsv")


def test_model_written_code_is_not_run_without_consent(tmp_path: Path) -> None:
    asked: list[list[str]] = []

    def refuse(code: list[str]) -> bool:
        asked.append(code)
        return False

    result = new_project(spec(), tmp_path / "p", generator=ModelWritten(), consent=refuse)
    assert asked == [["train.py"]]
    assert result.smoke is None and "needs consent" in str(result.smoke_skipped)
    assert (tmp_path / "p" / "train.py").exists()  # written and committed all the same


def test_regen_project_merges_checks_and_records_the_outcome(tmp_path: Path) -> None:
    new_project(spec(), tmp_path / "p", run_smoke=False)
    result = regen_project(tmp_path / "p", ["num_epochs=5"], run_smoke=False)
    assert result.regen.changes == ["num_epochs: 3 -> 5"] and result.regen.merge
    assert result.diagnostics == [] and result.smoke is None
    assert yaml.safe_load((tmp_path / "p" / "config.yaml").read_text())["num_epochs"] == 5
    # `scaffold log` reads what the run recorded on the generation
    assert generations(tmp_path / "p")[0].outcome == {"check_errors": 0, "smoke": None}
    again = regen_project(tmp_path / "p", [], run_smoke=False)
    assert again.regen.generation is None and again.diagnostics == []
