"""The smoke run's checks on their own, against runs whose outcome is known: a loss that is 0 from the start (every
target masked out), a task head left at its random weights under the names each PEFT method saves it by, a
reloaded model whose eval loss differs by float32 rounding or by more, and targets learned without their inputs.
bench/smoke_reliability.py measures them on real smoke runs (every task x method, seeded breakages)."""

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


def test_rolled_targets_pair_each_example_with_the_next_ones_where_both_have_a_target(tiny) -> None:
    tags = torch.tensor([[1, 2, -100], [3, -100, -100], [4, 5, 6]])
    own, other = tiny.paired_targets({"input_ids": torch.zeros(3, 3), "labels": tags})
    # Rolled by one example: row 0 gets row 2's tags, row 1 row 0's, row 2 row 1's; scored where both have a tag.
    assert own["labels"].tolist() == [[1, 2, -100], [3, -100, -100], [4, -100, -100]]
    assert other["labels"].tolist() == [[4, 5, -100], [1, -100, -100], [3, -100, -100]]
    classes = tiny.paired_targets({"input_ids": torch.zeros(3, 2), "labels": torch.tensor([0, 1, 1])})
    assert classes[0]["labels"].tolist() == [0, 1, 1] and classes[1]["labels"].tolist() == [1, 0, 1]


def test_a_model_that_scores_another_examples_targets_as_well_as_its_own_fails(tiny) -> None:
    assert tiny.check_pairing(0.5, 0.64) == []  # 28% more loss with another example's targets
    assert "paired with the right inputs" in tiny.check_pairing(0.5, 0.6)[0]  # 20%: what targets share alone


@pytest.mark.slow
def test_the_smoke_run_fails_a_loop_that_shuffles_tags_against_their_sentences(
    render_project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Tags shuffled across each batch's sentences still lower the loss (common tags are learned), and the head
    trains: only the pairing check sees that no sentence's own tags were learned."""
    render_project("token-classification", DATA / "ner_conll.conll")
    train, smoke = importlib.import_module("train"), importlib.import_module("tests.smoke")
    update = train.train_update

    def shuffled(run, batches, meter):
        for batch in batches:
            batch["labels"] = batch["labels"][torch.randperm(len(batch["labels"]))]
        return update(run, batches, meter)

    monkeypatch.setattr(train, "train_update", shuffled)
    result = smoke.run(tmp_path / "smoke")
    assert not result["passed"]
    assert len(result["failures"]) == 1 and "paired with the right inputs" in result["failures"][0], result
