"""The contract every registered strategy passes (new strategies are picked up automatically)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmmal import strategies
from bmmal.contribution import shapley
from bmmal.data import ArrayDataset
from bmmal.errors import BmmalError
from bmmal.models import MultimodalClassifier
from bmmal.models.encoders import MLPEncoder
from bmmal.inference import mc_dropout_probs, pool_outputs
from bmmal.outputs import PoolOutputs

VARIANTS = ("normal", "uniform_probs", "duplicate_embeddings", "zero_embeddings", "single_class")


def contract_outputs(variant: str = "normal", n: int = 30, n_classes: int = 4, n_labelled: int = 6,
                     seed: int = 0) -> PoolOutputs:
    """Every PoolOutputs field, from a small randomly initialised two-modality model with dropout."""
    if variant == "single_class":
        n_classes = 1
    torch.manual_seed(seed)
    model = MultimodalClassifier({"image": MLPEncoder((6,), hidden_dims=(8,), embed_dim=5, dropout=0.3),
                                  "text": MLPEncoder((4,), hidden_dims=(8,), embed_dim=3, dropout=0.3)},
                                 n_classes).eval()
    g = np.random.default_rng(seed)
    features = {"image": g.normal(size=(n, 6)), "text": g.normal(size=(n, 4))}
    if variant == "duplicate_embeddings":
        features = {m: np.repeat(x[:1], n, axis=0) for m, x in features.items()}
    dataset = ArrayDataset(features, np.zeros(n, dtype=np.int64), tuple(str(c) for c in range(n_classes)))
    base = pool_outputs(model, dataset, np.zeros(n, dtype=bool), ("embeddings", "unimodal_probs"))
    embeddings = base.embeddings
    if variant == "zero_embeddings":
        embeddings = {m: torch.zeros_like(z) for m, z in embeddings.items()}
    fuse = model.fuse  # differentiable, like the fuse that inference hands out
    with torch.no_grad():
        probs = torch.softmax(fuse(embeddings), 1)
    unimodal, mc = base.unimodal_probs, mc_dropout_probs(model, dataset, passes=5, seed=seed)
    if variant == "uniform_probs":
        probs = torch.full((n, n_classes), 1.0 / n_classes)
        unimodal = {m: probs.clone() for m in unimodal}
        mc = probs.expand(5, n, n_classes).clone()
    labeled = np.zeros(n, dtype=bool)
    labeled[g.choice(n, n_labelled, replace=False)] = True
    return PoolOutputs(labeled=torch.as_tensor(labeled), probs=probs, embeddings=embeddings,
                       unimodal_probs=unimodal, shapley=shapley(fuse, embeddings), mc_probs=mc, fuse=fuse)


def snapshot(outputs: PoolOutputs) -> dict:
    tensors = {"labeled": outputs.labeled, "probs": outputs.probs, "shapley": outputs.shapley,
               "mc_probs": outputs.mc_probs}
    tensors.update({f"emb/{m}": z for m, z in outputs.embeddings.items()})
    return {k: v.clone() for k, v in tensors.items()}


def check_valid(rows, outputs: PoolOutputs, budget: int) -> None:
    assert isinstance(rows, np.ndarray) and rows.dtype == np.int64 and rows.ndim == 1
    assert len(rows) == budget and len(np.unique(rows)) == budget
    assert not outputs.labeled.numpy()[rows].any()
    assert ((rows >= 0) & (rows < len(outputs))).all()


@pytest.fixture(scope="module")
def outputs_by_variant():
    return {v: contract_outputs(v) for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", strategies.available())
def test_valid_selection_and_scores(name, variant, outputs_by_variant):
    outputs = outputs_by_variant[variant]
    before = snapshot(outputs)
    strategy = strategies.get(name)
    rows = strategy.select(outputs, budget=5, seed=0)
    check_valid(rows, outputs, 5)
    scores = strategy.scores(outputs)
    if scores is not None:
        scores = np.asarray(scores)
        assert scores.shape == (len(outputs),)
        assert not np.isnan(scores[outputs.unlabeled_rows]).any()
    after = snapshot(outputs)
    assert all(torch.equal(before[k], after[k]) for k in before), f"{name} changed its inputs"


@pytest.mark.parametrize("name", strategies.available())
def test_same_seed_same_rows(name, outputs_by_variant):
    outputs = outputs_by_variant["normal"]
    first = strategies.get(name).select(outputs, budget=7, seed=3)
    again = strategies.get(name).select(outputs, budget=7, seed=3)
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name", strategies.available())
def test_budget_equal_to_unlabelled_pool(name, outputs_by_variant):
    outputs = outputs_by_variant["normal"]
    n_unlabelled = len(outputs.unlabeled_rows)
    rows = strategies.get(name).select(outputs, budget=n_unlabelled, seed=0)
    check_valid(rows, outputs, n_unlabelled)
    assert set(rows) == set(outputs.unlabeled_rows)


@pytest.mark.parametrize("name", strategies.available())
@pytest.mark.parametrize("budget", [0, -1, 25, 2.5])
def test_bad_budget_is_a_clear_error(name, budget, outputs_by_variant):
    with pytest.raises(BmmalError, match="budget"):
        strategies.get(name).select(outputs_by_variant["normal"], budget=budget, seed=0)


@pytest.mark.parametrize("name", strategies.available())
def test_every_strategy_is_documented(name):
    cls = strategies.strategy_class(name)
    assert cls.summary and "\n" not in cls.summary
    assert set(cls.needs) <= {"probs", "embeddings", "unimodal_probs", "shapley", "mc_probs", "fuse"}
    module_doc = __import__(cls.__module__, fromlist=["_"]).__doc__ or ""
    assert (cls.__doc__ or "") + module_doc, f"{name} has no docstring citing its paper"
