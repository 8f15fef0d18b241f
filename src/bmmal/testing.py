"""The strategy contract as a check that any strategy runs on itself, bmmal's own or another package's.

In your package's tests::

    from bmmal.testing import check_strategy

    def test_my_strategy_keeps_the_contract():
        check_strategy(MyStrategy)            # a class, an instance, or a registered name

`check_strategy` selects from small pools built by `contract_outputs` (a tiny random two-modality model:
every PoolOutputs field, several degenerate variants, incomplete pools with missing modalities, and a
pool holding only the fields the strategy declares in `needs`). It asserts that `select`
- returns distinct unlabelled row indices, int64, exactly `budget` of them (also budget = whole pool);
- gives the same rows for the same seed;
- rejects a budget of 0, -1, more than the unlabelled rows, a bool or a float with a BmmalError;
- rejects NaN in every field it needs with a BmmalError;
- never changes its input (every tensor and dict compared before and after; an absent field stays absent);
- and that `scores`, where the strategy has them, covers every unlabelled row,
and that the strategy class is documented (`name`, one-line `summary`, known `needs`, a docstring).
A failure is an AssertionError naming the strategy and what it broke.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from bmmal.contribution import shapley, zero_absent
from bmmal.errors import BmmalError
from bmmal.outputs import FIELDS, PoolOutputs

VARIANTS = ("normal", "uniform_probs", "duplicate_embeddings", "zero_embeddings", "single_class",
            "text_absent_unlabeled", "mostly_one_modality")
INCOMPLETE_VARIANTS = ("text_absent_unlabeled", "mostly_one_modality")
MODALITIES = {"image": 6, "text": 4}  # input width of each modality of the contract model
EMBED_DIMS = {"image": 5, "text": 3}
MC_PASSES = 5


class ContractModel(nn.Module):
    """Two small MLP encoders with dropout, a fused head on their concatenation and one head per modality."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.encoders = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Dropout(0.3),
                                                        nn.Linear(8, EMBED_DIMS[m]), nn.ReLU())
                                       for m, d in MODALITIES.items()})
        self.head = nn.Linear(sum(EMBED_DIMS.values()), n_classes)
        self.unimodal_heads = nn.ModuleDict({m: nn.Linear(e, n_classes) for m, e in EMBED_DIMS.items()})

    def embed(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: encoder(batch[m]) for m, encoder in self.encoders.items()}

    def fuse(self, embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([embeddings[m] for m in self.encoders], dim=1))


def contract_outputs(variant: str = "normal", *, fields: Iterable[str] | None = None, n: int = 30,
                     n_classes: int = 4, n_labeled: int = 6, seed: int = 0) -> PoolOutputs:
    """A small pool with every PoolOutputs field, or only `fields` (plus the required `labeled` and `probs`).

    Variants: "normal"; "uniform_probs" (every probability 1/C, unimodal and MC passes too);
    "duplicate_embeddings" (every sample identical); "zero_embeddings"; "single_class" (C = 1); and two
    incomplete pools (`present` set, absent embeddings zero, as `bmmal.pool_outputs` makes them):
    "text_absent_unlabeled" (no unlabelled sample has text) and "mostly_one_modality" (about 80 % of the
    samples have one modality, image or text).
    """
    if variant not in VARIANTS:
        raise BmmalError(f"unknown contract variant {variant!r}; known: {', '.join(VARIANTS)}")
    n_classes = 1 if variant == "single_class" else n_classes
    with torch.random.fork_rng(devices=[]):  # leaves the caller's random state alone
        torch.manual_seed(seed)
        model = ContractModel(n_classes).eval()
        g = np.random.default_rng(seed)
        inputs = {m: torch.as_tensor(g.normal(size=(n, d)), dtype=torch.float32) for m, d in MODALITIES.items()}
        if variant == "duplicate_embeddings":
            inputs = {m: x[:1].repeat(n, 1) for m, x in inputs.items()}
        labeled = np.zeros(n, dtype=bool)
        labeled[g.choice(n, n_labeled, replace=False)] = True
        present = _contract_present(variant, labeled, g)
        with torch.no_grad():
            embeddings = zero_absent(model.embed(inputs), present)
            if variant == "zero_embeddings":
                embeddings = {m: torch.zeros_like(z) for m, z in embeddings.items()}
            probs = torch.softmax(model.fuse(embeddings), 1)
            unimodal = {m: torch.softmax(head(embeddings[m]), 1) for m, head in model.unimodal_heads.items()}
            model.train()  # MC dropout: dropout active in the encoders
            mc = torch.stack([torch.softmax(model.fuse(zero_absent(model.embed(inputs), present)), 1)
                              for _ in range(MC_PASSES)])
            model.eval()
    if variant == "uniform_probs":
        probs = torch.full((n, n_classes), 1.0 / n_classes)
        unimodal = {m: probs.clone() for m in unimodal}
        mc = probs.expand(MC_PASSES, n, n_classes).clone()
    values = {"probs": probs, "embeddings": embeddings, "unimodal_probs": unimodal,
              "shapley": shapley(model.fuse, embeddings, present=present), "mc_probs": mc, "fuse": model.fuse}
    keep = set(FIELDS) if fields is None else set(fields)
    required = {f.name for f in dataclasses.fields(PoolOutputs)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return PoolOutputs(labeled=torch.as_tensor(labeled), present=present,
                       **{k: v for k, v in values.items() if k in keep or k in required})


def _contract_present(variant: str, labeled: np.ndarray, g: np.random.Generator) -> torch.Tensor | None:
    """bool [N, 2] (image, text) of an incomplete variant; None for the complete ones."""
    n = len(labeled)
    if variant == "text_absent_unlabeled":
        present = np.ones((n, 2), dtype=bool)
        present[~labeled, 1] = False
    elif variant == "mostly_one_modality":
        present = np.ones((n, 2), dtype=bool)
        one = g.random(n) < 0.8
        present[one, g.integers(0, 2, size=int(one.sum()))] = False
    else:
        return None
    return torch.as_tensor(present)


# ---- the checks ---------------------------------------------------------------------------------------


def _factory(strategy: Any, params: dict | None) -> tuple[Callable[[], Any], str]:
    """A function making a fresh instance, and the strategy's name."""
    params = params or {}
    if isinstance(strategy, str):
        from bmmal import strategies

        return (lambda: strategies.get(strategy, **params)), strategy
    if isinstance(strategy, type):
        return (lambda: strategy(**params)), getattr(strategy, "name", strategy.__name__)
    if params:
        raise BmmalError("params go with a strategy name or class, not with an instance")
    return (lambda: copy.deepcopy(strategy)), getattr(strategy, "name", type(strategy).__name__)


def _copy(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.copy()
    return value  # None, a function: compared by identity


def _differs(before: Any, after: Any) -> str | None:
    """What changed, in words (": ..." or "['key']: ..."); None if nothing did."""
    if torch.is_tensor(before):
        if not torch.is_tensor(after):
            return f": was a tensor, is {type(after).__name__}"
        if (before.dtype, before.shape, before.device) != (after.dtype, after.shape, after.device):
            return f": was {before.dtype} {list(before.shape)} on {before.device}, is {after.dtype} " \
                   f"{list(after.shape)} on {after.device}"
        return None if torch.equal(before, after) else ": its values changed"
    if isinstance(before, dict):
        if not isinstance(after, dict) or list(before) != list(after):
            return f": keys were {list(before)}, are {list(after) if isinstance(after, dict) else after!r}"
        return next((f"[{k!r}]{d}" for k in before if (d := _differs(before[k], after[k]))), None)
    if isinstance(before, np.ndarray):
        same = isinstance(after, np.ndarray) and np.array_equal(before, after)
        return None if same else ": its values changed"
    if before is None:
        return None if after is None else ": was absent (None), is now set"
    return None if after is before else ": was replaced"


def snapshot(outputs: PoolOutputs) -> dict[str, Any]:
    """A copy of every field, to compare with `assert_unchanged` after a selection."""
    return {f.name: _copy(getattr(outputs, f.name)) for f in dataclasses.fields(outputs)}


def assert_unchanged(before: dict[str, Any], outputs: PoolOutputs, name: str) -> None:
    for field, value in before.items():
        change = _differs(value, getattr(outputs, field))
        assert change is None, f"strategy {name!r} changed its input: PoolOutputs.{field}{change}"


def assert_valid_rows(rows: Any, outputs: PoolOutputs, budget: int, name: str) -> None:
    assert isinstance(rows, np.ndarray) and rows.dtype == np.int64 and rows.ndim == 1, \
        f"strategy {name!r} must return a 1-d int64 numpy array, got {type(rows).__name__} " \
        f"{getattr(rows, 'dtype', '')} {list(getattr(rows, 'shape', []))}"
    assert len(rows) == budget, f"strategy {name!r} returned {len(rows)} rows for a budget of {budget}"
    assert len(np.unique(rows)) == budget, f"strategy {name!r} returned a row twice"
    assert ((rows >= 0) & (rows < len(outputs))).all(), f"strategy {name!r} returned a row outside the pool"
    assert not outputs.labeled.cpu().numpy()[rows].any(), f"strategy {name!r} returned a labelled row"


def check_selection(make: Callable[[], Any], name: str, outputs: PoolOutputs, budget: int, seed: int = 0,
                    scores: bool = False) -> np.ndarray:
    """Valid rows (and, with `scores`, valid scores), input unchanged; returns the rows."""
    strategy = make()
    before = snapshot(outputs)
    rows = strategy.select(outputs, budget=budget, seed=seed)
    assert_valid_rows(rows, outputs, budget, name)
    scores = strategy.scores(outputs) if scores else None
    if scores is not None:
        scores = np.asarray(scores)
        assert scores.shape == (len(outputs),), f"strategy {name!r}: scores of shape {scores.shape}, " \
                                                f"expected ({len(outputs)},)"
        assert not np.isnan(scores[outputs.unlabeled_rows]).any(), f"strategy {name!r}: NaN score of an unlabelled row"
    assert_unchanged(before, outputs, name)
    return rows


def check_budget_errors(make: Callable[[], Any], name: str, outputs: PoolOutputs) -> None:
    too_many = len(outputs.unlabeled_rows) + 1
    for budget in (0, -1, too_many, True, 2.5):
        try:
            make().select(outputs, budget=budget, seed=0)
        except BmmalError as e:
            assert "budget" in str(e), f"strategy {name!r}: the error for budget {budget!r} does not say " \
                                       f"'budget': {e}"
        else:
            raise AssertionError(f"strategy {name!r} accepted budget {budget!r} (expected a BmmalError)")


def _with_nan(outputs: PoolOutputs, field: str) -> PoolOutputs | None:
    """A copy of `outputs` with NaN in the first unlabelled row of `field` (of its first tensor for a dict)."""
    value = getattr(outputs, field)
    row = int(outputs.unlabeled_rows[0])
    if torch.is_tensor(value) and value.is_floating_point():
        spoiled = value.clone()
        spoiled[(slice(None), row) if field == "mc_probs" else row] = float("nan")  # mc_probs is [T, N, C]
    elif isinstance(value, dict) and value:
        first = next(iter(value))
        spoiled = dict(value)
        spoiled[first] = value[first].clone()
        spoiled[first][row] = float("nan")
    else:
        return None
    spoiled_outputs = copy.copy(outputs)  # set after construction: PoolOutputs(...) itself refuses NaN probabilities
    setattr(spoiled_outputs, field, spoiled)
    return spoiled_outputs


def check_nan_rejected(make: Callable[[], Any], name: str, outputs: PoolOutputs) -> None:
    for field in sorted(make().needs):
        spoiled = _with_nan(outputs, field)
        if spoiled is None:  # e.g. `fuse`, a function
            continue
        try:
            make().select(spoiled, budget=3, seed=0)
        except BmmalError:
            continue
        raise AssertionError(f"strategy {name!r} accepted NaN in PoolOutputs.{field} (expected a BmmalError)")


def check_documented(cls: type) -> None:
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and name, f"{cls.__name__} has no `name`"
    summary = getattr(cls, "summary", "")
    assert summary and "\n" not in summary, f"strategy {name!r} needs a one-line `summary`"
    unknown = set(getattr(cls, "needs", ())) - set(FIELDS)
    assert not unknown, f"strategy {name!r} needs unknown PoolOutputs fields {sorted(unknown)}; known: {FIELDS}"
    module_doc = getattr(inspect.getmodule(cls), "__doc__", None) or ""
    assert (cls.__doc__ or "") + module_doc, f"strategy {name!r} has no docstring (say which method it implements)"


def check_strategy(strategy: Any, params: dict | None = None, *, variants: Iterable[str] = VARIANTS,
                   budget: int = 5, seed: int = 3) -> None:
    """Assert that `strategy` (a registered name, a Strategy class or an instance; `params` for its
    constructor) keeps the strategy contract on small pools. Raises AssertionError naming what it broke."""
    make, name = _factory(strategy, params)
    check_documented(type(make()))
    for variant in variants:
        check_selection(make, name, contract_outputs(variant), budget, scores=True)
    outputs = contract_outputs()
    first = check_selection(make, name, outputs, budget + 2, seed)
    np.testing.assert_array_equal(first, check_selection(make, name, outputs, budget + 2, seed),
                                  err_msg=f"strategy {name!r}: the same seed gave different rows")
    whole = len(outputs.unlabeled_rows)
    assert set(check_selection(make, name, outputs, whole)) == set(outputs.unlabeled_rows), \
        f"strategy {name!r}: a budget of the whole unlabelled pool must select all of it"
    try:  # a pool with only the fields the strategy declares, as inference hands it over
        check_selection(make, name, contract_outputs(fields=make().needs), budget)
    except AssertionError:
        raise
    except Exception as e:
        raise AssertionError(f"strategy {name!r} fails on a pool holding only the fields in its `needs` "
                             f"({', '.join(sorted(make().needs)) or 'none'}): {type(e).__name__}: {e}") from e
    check_budget_errors(make, name, outputs)
    check_nan_rejected(make, name, outputs)
