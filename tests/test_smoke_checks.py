"""The smoke run's checks on their own, against runs whose outcome is known: a loss that is 0 from the start (every
target masked out), a task head left at its random weights under the names each PEFT method saves it by, and a
reloaded model whose eval loss differs by float32 rounding or by more. bench/smoke_reliability.py measures them on
real smoke runs (every task x method, seeded breakages)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import DATA


@pytest.fixture
def tiny(render_project):
    """A text-classification project's tests/tiny.py, imported."""
    render_project("text-classification", DATA / "sst_like.tsv")
    return importlib.import_module("tests.tiny")


def test_a_loss_of_zero_from_the_start_fails_and_a_falling_one_passes(tiny) -> None:
    assert "no target is learned" in tiny.check_losses([0.0] * 16)[0]
    assert tiny.check_losses([1.0] * 4 + [0.9] * 8 + [0.5] * 4) == []
    assert "did not fall by 5%" in tiny.check_losses([1.0] * 12 + [0.97] * 4)[0]


@pytest.mark.parametrize("prefix", ["", "base_model.model.", "base_model."])  # full, LoRA/IA3, prompt tuning
def test_a_head_left_at_its_random_weights_fails_under_every_methods_names(tiny, tmp_path: Path, prefix: str) -> None:
    initial = {"classifier.weight": torch.randn(2, 4), "classifier.bias": torch.zeros(2), "bert.x": torch.ones(3)}
    (tmp_path / "tiny").mkdir()
    save_file(initial, tmp_path / "tiny" / "model.safetensors")
    best = tmp_path / "out" / "best"
    best.mkdir(parents=True)

    def saved(head: dict[str, torch.Tensor]) -> list[str]:
        save_file({prefix + name: weights for name, weights in head.items()}, best / "adapter_model.safetensors")
        return tiny.check_head_trained(tmp_path / "tiny", tmp_path / "out")

    assert "did not train" in saved({"classifier.weight": initial["classifier.weight"].clone(),
                                     "classifier.bias": torch.zeros(2)})[0]  # fmt: skip
    assert saved({"classifier.weight": initial["classifier.weight"] + 1e-3, "classifier.bias": torch.zeros(2)}) == []
    assert "has no task head" in saved({"bert.x": torch.ones(3)})[0]


def test_the_reloaded_eval_loss_may_differ_by_rounding_only(tiny) -> None:
    assert tiny.check_same_scores({"eval_loss": 6.024527}, {"eval_loss": 6.024392}) == []  # 2e-5 of the loss
    assert "not the trained one" in tiny.check_same_scores({"eval_loss": 6.03}, {"eval_loss": 6.024392})[0]
