"""Each baseline strategy on small cases whose answer can be worked out by hand or naively."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bmmal import strategies
from bmmal.data import ArrayDataset
from bmmal.inference import mc_dropout_probs, pool_outputs
from bmmal.models import MultimodalClassifier
from bmmal.models.encoders import MLPEncoder
from bmmal.outputs import PoolOutputs
from bmmal.strategies import kcenter
from bmmal.strategies.bald import mutual_information
from bmmal.strategies.deepfool import deepfool_distances
from bmmal.strategies.gcn import knn_adjacency, train_gcn
from bmmal.strategies.kmeans import nearest_per_cluster


def outputs_from_probs(probs, labeled=None) -> PoolOutputs:
    probs = torch.as_tensor(probs, dtype=torch.float32)
    labeled = torch.zeros(len(probs), dtype=torch.bool) if labeled is None else torch.as_tensor(labeled)
    return PoolOutputs(labeled=labeled, probs=probs)


def outputs_from_points(points, labeled=None) -> PoolOutputs:
    x = torch.as_tensor(np.asarray(points), dtype=torch.float32)
    labeled = torch.zeros(len(x), dtype=torch.bool) if labeled is None else torch.as_tensor(labeled)
    half = x.shape[1] // 2
    return PoolOutputs(labeled=labeled, probs=torch.full((len(x), 2), 0.5),
                       embeddings={"a": x[:, :half], "b": x[:, half:]})


# --- uncertainty on the fused probabilities ---------------------------------------------------------

PROBS = [[0.97, 0.01, 0.01, 0.01],
         [0.25, 0.25, 0.25, 0.25],  # most uniform
         [1.00, 0.00, 0.00, 0.00],  # one-hot: entropy exactly 0, no NaN
         [0.40, 0.40, 0.10, 0.10],  # top two tied
         [0.30, 0.30, 0.20, 0.20],
         [0.70, 0.10, 0.10, 0.10]]


def test_entropy_matches_hand_computation_and_picks_most_uniform():
    out = outputs_from_probs(PROBS)
    scores = strategies.get("entropy").scores(out)
    expected = [-sum(p * math.log(p) for p in row if p > 0) for row in PROBS]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert scores[2] == 0.0
    assert list(strategies.get("entropy").select(out, 2)) == [1, 4]


def test_margin_picks_the_smallest_top_two_gaps():
    out = outputs_from_probs(PROBS)
    np.testing.assert_allclose(strategies.get("margin").scores(out), [-0.96, 0, -1, 0, 0, -0.6], atol=1e-6)
    assert set(strategies.get("margin").select(out, 3)) == {1, 3, 4}


def test_least_confidence_picks_the_lowest_top_probability():
    out = outputs_from_probs(PROBS)
    np.testing.assert_allclose(strategies.get("least_confidence").scores(out), [0.03, 0.75, 0, 0.6, 0.7, 0.3],
                               atol=1e-6)
    assert list(strategies.get("least_confidence").select(out, 2)) == [1, 4]


def test_score_strategies_skip_labeled_rows_and_break_ties_by_seed():
    out = outputs_from_probs(PROBS, labeled=[False, True, False, False, False, False])
    assert 1 not in strategies.get("entropy").select(out, 3)
    assert np.isnan(strategies.get("entropy").scores(out)[1])
    tied = outputs_from_probs(np.full((50, 3), 1 / 3))
    picks = {tuple(strategies.get("margin").select(tied, 5, seed=s)) for s in range(5)}
    assert len(picks) > 1  # ties are not always resolved to the first rows


# --- BALD ---------------------------------------------------------------------------------------------

def test_bald_is_zero_when_passes_agree_and_log2_when_they_disagree_completely():
    same = torch.tensor([[0.2, 0.8], [0.5, 0.5]]).expand(6, 2, 2)
    assert torch.equal(mutual_information(same), torch.zeros(2, dtype=torch.float64))
    flip = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # two passes, one row: H(mean) = log 2, mean H = 0
    assert mutual_information(flip).item() == pytest.approx(math.log(2))


def test_bald_matches_a_naive_computation():
    g = torch.Generator().manual_seed(0)
    mc = torch.softmax(torch.randn(7, 20, 5, generator=g), dim=2)
    mean = mc.mean(0)
    naive = -(mean * mean.log()).sum(1) + (mc * mc.log()).sum(2).mean(0)
    np.testing.assert_allclose(mutual_information(mc).numpy(), naive.double().numpy(), atol=1e-6)


def _dropout_model_and_data(dropout):
    torch.manual_seed(0)
    model = MultimodalClassifier({"a": MLPEncoder((5,), hidden_dims=(16,), embed_dim=8, dropout=dropout),
                                  "b": MLPEncoder((3,), hidden_dims=(16,), embed_dim=8, dropout=dropout)}, 4)
    g = np.random.default_rng(0)
    data = ArrayDataset({"a": g.normal(size=(40, 5)), "b": g.normal(size=(40, 3))}, g.integers(0, 4, 40),
                        ("w", "x", "y", "z"))
    return model, data


def test_bald_scores_differ_on_a_model_with_dropout():
    """The reference code never enabled dropout, so all its BALD scores were about 0."""
    model, data = _dropout_model_and_data(dropout=0.5)
    mc = mc_dropout_probs(model, data, passes=8, seed=0)
    out = PoolOutputs(labeled=torch.zeros(40, dtype=torch.bool), probs=mc.mean(0), mc_probs=mc)
    scores = strategies.get("bald").scores(out)
    assert scores.min() >= 0 and scores.max() > 1e-3 and len(np.unique(scores)) > 30
    assert not model.training  # inference left the model in eval mode
    still, _ = _dropout_model_and_data(dropout=0.0)
    mc0 = mc_dropout_probs(still, data, passes=4, seed=0)
    assert mutual_information(mc0).max() < 1e-6  # without dropout the passes agree


# --- k-center and coreset -----------------------------------------------------------------------------

def naive_k_center(x, k, centres, first=None):
    chosen = [] if first is None else [first]
    known = torch.cat([centres, x[chosen]]) if len(chosen) else centres
    for _ in range(k - len(chosen)):
        d = torch.cdist(x.double(), known.double()).min(1).values
        d[chosen] = -1
        pick = int(torch.argmax(d))
        chosen.append(pick)
        known = torch.cat([known, x[pick:pick + 1]])
    return chosen


def test_coreset_second_pick_is_the_farthest_point():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [10.0, 0.0], [4.0, 3.0]])
    out = outputs_from_points(points, labeled=[True, False, False, False, False])
    assert list(strategies.get("coreset").select(out, 2)) == [3, 4]  # 10 from 0; then (4,3): 5 from 0
    np.testing.assert_allclose(strategies.get("coreset").scores(out)[1:], [1, 2, 10, 5], rtol=1e-6)
    x = torch.as_tensor(points, dtype=torch.float32)
    picks = kcenter.greedy_k_center(x, 2, None, np.random.default_rng(0))
    assert picks[1] == int(torch.cdist(x, x[picks[0]][None]).squeeze(1).argmax())


def test_greedy_k_center_matches_naive_with_blocked_distances(monkeypatch):
    monkeypatch.setattr(kcenter, "BLOCK_ELEMENTS", 37)  # many small blocks
    g = torch.Generator().manual_seed(1)
    x, centres = torch.randn(60, 7, generator=g), torch.randn(9, 7, generator=g)
    np.testing.assert_allclose(kcenter.min_sq_distances(x, centres).numpy(),
                               (torch.cdist(x, centres).min(1).values ** 2).numpy(), rtol=1e-4, atol=1e-4)
    assert list(kcenter.greedy_k_center(x, 12, centres, np.random.default_rng(0))) == naive_k_center(x, 12, centres)


def test_greedy_k_center_on_duplicates_returns_distinct_rows():
    x = torch.ones(6, 3)
    picks = kcenter.greedy_k_center(x, 6, x[:1], np.random.default_rng(0))
    assert sorted(picks) == list(range(6))


# --- k-means ------------------------------------------------------------------------------------------

def test_kmeans_returns_one_row_per_well_separated_blob():
    g = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [50, 0, 0, 0], [0, 50, 0, 0], [0, 0, 50, 50]], dtype=float)
    blob = np.repeat(np.arange(4), 25)
    points = centres[blob] + g.normal(size=(100, 4))
    out = outputs_from_points(points)
    for seed in range(3):
        rows = strategies.get("kmeans").select(out, 4, seed=seed)
        assert sorted(blob[rows]) == [0, 1, 2, 3]
        for r in rows:  # the member nearest its blob's mean (the k-means centroid here)
            members = np.flatnonzero(blob == blob[r])
            mean = points[members].mean(0)
            assert r == members[np.argmin(((points[members] - mean) ** 2).sum(1))]


def test_nearest_per_cluster_fills_empty_clusters_with_distinct_rows():
    x = np.array([[0.0], [0.1], [5.0], [5.2], [9.0]], dtype=np.float32)
    centroids = np.array([[0.0], [5.0], [5.1], [100.0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1, 1])  # clusters 2 and 3 are empty
    picks = nearest_per_cluster(x, centroids, labels)
    assert list(picks[:2]) == [0, 2]
    assert picks[2] == 3  # nearest unused row to 5.1
    assert picks[3] == 4  # nearest unused row to 100
    assert len(set(picks)) == 4


# --- DeepFool -----------------------------------------------------------------------------------------

def closed_form_linear(weight, bias, x, classes=None):
    f = x @ weight.T + bias
    y = f.argmax(1)
    out = []
    for i in range(len(x)):
        ks = [k for k in range(weight.shape[0]) if k != y[i]] if classes is None else [classes[i]]
        out.append(min(float((f[i, k] - f[i, y[i]]).abs() / torch.linalg.norm(weight[k] - weight[y[i]]))
                       for k in ks))
    return np.array(out)


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_deepfool_equals_the_closed_form_for_a_linear_head(fusion):
    torch.manual_seed(0)
    model = MultimodalClassifier({"a": MLPEncoder((2,), embed_dim=4), "b": MLPEncoder((2,), embed_dim=3)}, 5,
                                 fusion=fusion)
    g = torch.Generator().manual_seed(0)
    emb = {"a": torch.randn(40, 4, generator=g), "b": torch.randn(40, 3, generator=g)}
    x = torch.cat([emb["a"], emb["b"]], 1)
    with torch.no_grad():  # recover W, b of the (linear) fused head from zero and unit inputs
        bias = model.fuse({"a": torch.zeros(1, 4), "b": torch.zeros(1, 3)})[0]
        eye = torch.eye(7)
        weight = (model.fuse({"a": eye[:, :4], "b": eye[:, 4:]}) - bias).T
    d = deepfool_distances(model.fuse, [emb["a"], emb["b"]], ["a", "b"]).numpy()
    np.testing.assert_allclose(d, closed_form_linear(weight, bias, x), rtol=1e-4)
    runner_up = (x @ weight.T + bias).topk(2, dim=1).indices[:, 1]
    d1 = deepfool_distances(model.fuse, [emb["a"], emb["b"]], ["a", "b"], top_k=1).numpy()
    np.testing.assert_allclose(d1, closed_form_linear(weight, bias, x, runner_up), rtol=1e-4)
    labeled = torch.zeros(40, dtype=torch.bool)
    out = PoolOutputs(labeled=labeled, probs=torch.softmax(x @ weight.T + bias, 1), embeddings=emb, fuse=model.fuse)
    assert set(strategies.get("deepfool").select(out, 5)) == set(np.argsort(d)[:5])


def test_deepfool_on_a_nonlinear_head_crosses_the_boundary():
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    fuse = lambda e: head(torch.cat([e["a"], e["b"]], 1))
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(30, 2, generator=g), torch.randn(30, 3, generator=g)
    d = deepfool_distances(fuse, [a, b], ["a", "b"], max_iter=50)
    assert torch.isfinite(d).all() and (d > 0).all()
    one_step = deepfool_distances(fuse, [a, b], ["a", "b"], max_iter=1)
    assert not torch.allclose(d, one_step)  # later steps matter for a curved head


def test_deepfool_works_with_the_fuse_that_inference_hands_out():
    model, data = _dropout_model_and_data(dropout=0.2)
    out = pool_outputs(model, data, np.zeros(40, dtype=bool), needs={"embeddings", "fuse"})
    rows = strategies.get("deepfool").select(out, 4)
    assert len(set(rows)) == 4


# --- CoreGCN / UncertainGCN ---------------------------------------------------------------------------

def test_knn_adjacency_is_sparse_and_keeps_the_true_neighbours(monkeypatch):
    from bmmal.strategies import gcn
    monkeypatch.setattr(gcn, "BLOCK_ELEMENTS", 50)
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(30, 4, generator=g), dim=1)
    adj = knn_adjacency(x, 3).to_dense()
    assert (adj != 0).sum() <= 30 * 4
    np.testing.assert_allclose(adj.sum(1).numpy(), 2.0, rtol=1e-5)  # self-loop + weights summing to 1
    np.testing.assert_allclose(torch.diagonal(adj).numpy(), 1.0)
    sim = x @ x.T
    sim.fill_diagonal_(-2)
    for i in range(30):
        assert set(torch.nonzero(adj[i]).flatten().tolist()) - {i} <= set(sim[i].topk(3).indices.tolist())


def test_gcn_learns_to_tell_labeled_from_unlabeled():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(20, 6, generator=g) + 4, torch.randn(40, 6, generator=g) - 4])
    labeled = torch.zeros(60, dtype=torch.bool)
    labeled[:20] = True  # the labelled rows form their own cluster
    scores, hidden = train_gcn(x, labeled, seed=0, neighbours=5)
    assert scores[:20].mean() > scores[20:].mean() + 0.2
    assert hidden.shape == (60, 128)
    again, _ = train_gcn(x, labeled, seed=0, neighbours=5)
    assert torch.equal(scores, again)


def test_uncertaingcn_selects_scores_closest_to_the_margin():
    g = np.random.default_rng(0)
    points = g.normal(size=(50, 6))
    labeled = torch.zeros(50, dtype=torch.bool)
    labeled[:10] = True
    out = outputs_from_points(points, labeled)
    strategy = strategies.get("uncertaingcn", margin=0.3)
    rows = strategy.select(out, 5, seed=0)
    gcn_seed = int(np.random.default_rng(0).integers(2 ** 31 - 1))
    scores, _ = strategy.train(out, gcn_seed)
    closeness = (scores[10:] - 0.3).abs().numpy()
    assert set(rows) == set(10 + np.argsort(closeness, kind="stable")[:5])


def test_coregcn_is_k_center_on_the_gcn_features():
    g = np.random.default_rng(0)
    out = outputs_from_points(g.normal(size=(40, 4)), torch.arange(40) < 8)
    strategy = strategies.get("coregcn", epochs=20)
    rows = strategy.select(out, 6, seed=2)
    rng = np.random.default_rng(2)
    _, hidden = strategy.train(out, int(rng.integers(2 ** 31 - 1)))
    assert list(rows) == [8 + i for i in naive_k_center(hidden[8:], 6, hidden[:8])]


def test_gcn_strategy_rejects_bad_parameters():
    from bmmal.errors import BmmalError
    with pytest.raises(BmmalError, match="margin"):
        strategies.get("uncertaingcn", margin=2)
    with pytest.raises(BmmalError, match="neighbours"):
        strategies.get("coregcn", neighbours=0)
