"""The contract every registered strategy passes, checked by the public `bmmal.testing` (new strategies,
entry-point ones included, are picked up automatically), and proof that `bmmal.testing` catches each breach."""

from __future__ import annotations

import re
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from bmmal import strategies
from bmmal.errors import BmmalError
from bmmal.outputs import FIELDS
from bmmal.strategies import Strategy
from bmmal.testing import VARIANTS, check_selection, check_strategy, contract_outputs


@pytest.mark.parametrize("name", strategies.available())
def test_strategy_keeps_the_contract(name):
    check_strategy(name)


def test_the_strategy_in_the_extending_docs_keeps_the_contract():
    text = (Path(__file__).parents[1] / "docs" / "extending.md").read_text()
    source = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    module = types.ModuleType("acme_al_strategies")
    exec(compile(source, "docs/extending.md", "exec"), module.__dict__)  # noqa: S102 (the documented code)
    check_strategy(module.WeakestModality)
    assert 'weakest_modality = "acme_al.strategies:WeakestModality"' in text


def test_contract_outputs_has_every_field_or_only_those_asked_for():
    full = contract_outputs()
    assert all(getattr(full, f) is not None for f in FIELDS) and list(full.embeddings) == ["image", "text"]
    assert full.shapley.shape == (30, 2, 4) and full.mc_probs.shape[1:] == (30, 4)
    assert int(full.labeled.sum()) == 6
    only = contract_outputs(fields={"mc_probs"})
    assert only.mc_probs is not None and only.probs is not None  # probs is a required field of PoolOutputs
    assert only.embeddings == {} and only.shapley is None and only.unimodal_probs is None and only.fuse is None
    assert contract_outputs("single_class").probs.shape == (30, 1)
    assert torch.equal(contract_outputs().probs, full.probs)  # deterministic
    with pytest.raises(BmmalError, match="unknown contract variant"):
        contract_outputs("nope")


# ---- strategies that break one rule each: check_strategy must fail on every one -------------------------


class Lowest(Strategy):
    """The lowest unlabelled rows (a well-behaved strategy for these tests)."""

    name = "lowest"
    needs = frozenset({"probs"})
    summary = "the lowest unlabelled rows"

    def _select(self, outputs, candidates, budget, rng):
        return candidates[:budget]


class WritesShapley(Lowest):
    """Fills in a missing field of its input, as BMMAL once did."""

    def _select(self, outputs, candidates, budget, rng):
        outputs.shapley = torch.zeros(len(outputs), 2, outputs.probs.shape[1])
        return candidates[:budget]


class ScalesEmbeddingsInPlace(Lowest):
    """Changes an embedding tensor in place."""

    def _select(self, outputs, candidates, budget, rng):
        next(iter(outputs.embeddings.values())).mul_(2)
        return candidates[:budget]


class UsesUndeclaredEmbeddings(Lowest):
    """Reads embeddings without declaring them in `needs`."""

    def _select(self, outputs, candidates, budget, rng):
        distance = outputs.fused_embedding()[candidates].norm(dim=1)
        return candidates[np.argsort(distance.numpy(), kind="stable")[:budget]]


class ReturnsLabeledRows(Lowest):
    """Ignores `candidates`."""

    def _select(self, outputs, candidates, budget, rng):
        return np.arange(budget)


class IgnoresTheSeed(Lowest):
    """Draws from the global random state instead of `rng`."""

    def _select(self, outputs, candidates, budget, rng):
        return np.random.permutation(candidates)[:budget]


class AcceptsAnyBudget(Lowest):
    """Overrides `select` and skips the input checks."""

    def select(self, outputs, budget, seed=0):
        return outputs.unlabeled_rows[:int(budget)].astype(np.int64)


class Undocumented(Lowest):
    summary = "two\nlines"


BREACHES = [
    (WritesShapley, "'lowest' changed its input: PoolOutputs.shapley: its values changed"),
    (ScalesEmbeddingsInPlace, r"changed its input: PoolOutputs.embeddings\['image'\]: its values changed"),
    (UsesUndeclaredEmbeddings, "fails on a pool holding only the fields in its `needs` \\(probs\\): \\w+Error"),
    (ReturnsLabeledRows, "returned a labelled row"),
    (IgnoresTheSeed, "the same seed gave different rows"),
    (AcceptsAnyBudget, "accepted budget"),
    (Undocumented, "one-line `summary`"),
]


def test_a_well_behaved_strategy_passes():
    check_strategy(Lowest)
    check_strategy(Lowest(), variants=VARIANTS[:1])


@pytest.mark.parametrize(("cls", "message"), BREACHES, ids=[cls.__name__ for cls, _ in BREACHES])
def test_every_breach_is_caught(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_strategy(cls)


def test_an_absent_field_must_stay_absent():
    only_probs = contract_outputs(fields=WritesShapley.needs)
    with pytest.raises(AssertionError, match=r"PoolOutputs.shapley: was absent \(None\), is now set"):
        check_selection(WritesShapley, "lowest", only_probs, budget=5)
    assert only_probs.shapley is not None  # (what the check saw)


def test_nan_in_a_needed_field_must_be_rejected():
    class SkipsTheChecks(Lowest):
        needs = frozenset({"probs", "mc_probs"})

        def select(self, outputs, budget, seed=0):
            if isinstance(budget, bool) or not isinstance(budget, int) or not 0 < budget <= len(outputs.unlabeled_rows):
                raise BmmalError(f"bad budget {budget!r}")
            return outputs.unlabeled_rows[:budget].astype(np.int64)

    with pytest.raises(AssertionError, match="accepted NaN in PoolOutputs.mc_probs"):
        check_strategy(SkipsTheChecks)
