"""multihead_badge: BADGE on the gradients of the fused and every unimodal head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmmal import strategies
from bmmal.errors import BmmalError
from bmmal.outputs import PoolOutputs
from bmmal.strategies.gradient_embedding import pseudo_label_residual
from bmmal.strategies.multihead_badge import MultiheadBadge, multihead_gradient_embedding


def pool(n: int = 60, n_classes: int = 3, seed: int = 0) -> PoolOutputs:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, n_classes, generator=g), 1)
    unimodal = {m: torch.softmax(torch.randn(n, n_classes, generator=g), 1) for m in ("strong", "weak")}
    embeddings = {"strong": torch.randn(n, 5, generator=g), "weak": torch.randn(n, 3, generator=g)}
    labeled = torch.zeros(n, dtype=torch.bool)
    labeled[:5] = True
    return PoolOutputs(labeled=labeled, probs=probs, embeddings=embeddings, unimodal_probs=unimodal)


def test_registered_with_its_needs():
    assert "multihead_badge" in strategies.available()
    assert strategies.strategy_class("multihead_badge").needs == {"probs", "embeddings", "unimodal_probs"}


def test_factored_distances_equal_the_built_embedding():
    outputs = pool()
    rows = outputs.unlabeled_rows
    embedding = multihead_gradient_embedding(outputs, rows, unimodal_weight=0.7)
    dense = embedding.materialize().double()
    # the dense rows: fused block, then each unimodal head's block at the fused pseudo-label
    index = torch.as_tensor(rows)
    label = outputs.probs[index].argmax(1)
    expected = [(pseudo_label_residual(outputs.probs[index])[:, :, None]
                 * outputs.fused_embedding()[index][:, None, :]).reshape(len(rows), -1)]
    for m in ("strong", "weak"):
        residual = outputs.unimodal_probs[m][index].clone()
        residual[torch.arange(len(rows)), label] -= 1
        expected.append((0.7 ** 0.5 * residual[:, :, None] * outputs.embeddings[m][index][:, None, :])
                        .reshape(len(rows), -1))
    torch.testing.assert_close(dense, torch.cat(expected, 1).double(), rtol=1e-5, atol=1e-6)
    norms = embedding.sq_norms()
    torch.testing.assert_close(norms, (dense ** 2).sum(1))
    torch.testing.assert_close(embedding.sq_distances_to(4, norms), ((dense - dense[4]) ** 2).sum(1),
                               rtol=1e-6, atol=1e-8)


def test_zero_unimodal_weight_selects_what_badge_selects():
    outputs = pool()
    for seed in range(3):
        np.testing.assert_array_equal(strategies.get("multihead_badge", unimodal_weight=0).select(outputs, 12, seed),
                                      strategies.get("badge").select(outputs, 12, seed))


def test_prefers_rows_where_the_weak_head_is_unsure_and_the_fused_head_is_sure():
    n, c = 200, 4
    g = torch.Generator().manual_seed(1)
    label = torch.arange(n) % c
    confident = torch.nn.functional.one_hot(label, c).float() * 0.97 + 0.01
    weak = confident.clone()
    unsure = torch.arange(n) >= n // 2  # the second half: the weak head is uniform
    weak[unsure] = 1.0 / c
    z = {"strong": torch.randn(n, 8, generator=g), "weak": torch.randn(n, 8, generator=g)}
    outputs = PoolOutputs(labeled=torch.zeros(n, dtype=torch.bool), probs=confident, embeddings=z,
                          unimodal_probs={"strong": confident, "weak": weak})
    picked = [unsure[strategies.get(name).select(outputs, 20, seed=s)].float().mean().item()
              for name in ("multihead_badge", "badge") for s in range(5)]
    multihead, badge = np.mean(picked[:5]), np.mean(picked[5:])
    assert multihead > 0.9 and badge < 0.8, (multihead, badge)


def test_without_unimodal_probs_is_a_clear_error():
    outputs = pool()
    bare = PoolOutputs(labeled=outputs.labeled, probs=outputs.probs, embeddings=outputs.embeddings)
    with pytest.raises(BmmalError, match="needs PoolOutputs.unimodal_probs"):
        MultiheadBadge().select(bare, 5)
    partial = PoolOutputs(labeled=outputs.labeled, probs=outputs.probs, embeddings=outputs.embeddings,
                          unimodal_probs={"strong": outputs.unimodal_probs["strong"]})
    with pytest.raises(BmmalError, match="unimodal_probs for modality 'weak'"):
        MultiheadBadge().select(partial, 5)


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf"), "1", True])
def test_bad_weight_is_a_clear_error(weight):
    with pytest.raises(BmmalError, match="unimodal_weight"):
        strategies.get("multihead_badge", unimodal_weight=weight)
