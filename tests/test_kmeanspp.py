import itertools
import warnings

import numpy as np
import pytest
import torch

from bmmal import strategies
from bmmal.contribution import shapley
from bmmal.errors import BmmalError
from bmmal.outputs import PoolOutputs
from bmmal.strategies.gradient_embedding import gradient_embedding, pool_gradient_embedding, pseudo_label_residual
from bmmal.strategies.kmeanspp import (
    LocalParts,
    OuterProductEmbedding,
    PoolPart,
    kmeanspp_loop,
    kmeanspp_seeding,
    row_counters,
    row_uniforms,
)
from tests.conftest import random_embeddings


def pool_outputs(n=40, dims=(4, 3), n_classes=5, n_labeled=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = {f"m{i}": torch.randn(n, d, generator=g, dtype=torch.float64) for i, d in enumerate(dims)}
    weights = torch.randn(sum(dims), n_classes, generator=g, dtype=torch.float64)

    def fuse(z):
        return torch.cat(list(z.values()), 1) @ weights

    labeled = torch.zeros(n, dtype=torch.bool)
    labeled[:n_labeled] = True
    return PoolOutputs(labeled=labeled, probs=torch.softmax(fuse(emb), 1), embeddings=emb,
                       shapley=shapley(fuse, emb), fuse=fuse)


def materialised(outputs, rows, scales=None):
    """The gradient embedding built the naive way: per modality block, per class, then concatenated."""
    a = pseudo_label_residual(outputs.probs[rows])
    blocks = []
    for m, z in enumerate(outputs.embeddings.values()):
        s = scales[:, m:m + 1] if scales is not None else 1.0
        blocks.append((a[:, :, None] * (s * z[rows])[:, None, :]).reshape(len(rows), -1))
    return torch.cat(blocks, 1)


def naive_kmeanspp(g, k, rng, ids):
    """k-means++ on materialised rows with the kernel's sampling law (D^2 draw as an exponential race on
    the counter-based uniforms of the pool row ids)."""
    d2_all = torch.cdist(g, g) ** 2
    chosen = [int(torch.argmax((g ** 2).sum(1)))]
    while len(chosen) < k:
        min_d2 = d2_all[:, chosen].min(1).values.numpy().copy()
        min_d2[min_d2 <= 1e-12] = 0
        min_d2[chosen] = 0
        e = -np.log(row_uniforms(int(rng.integers(1 << 63)), row_counters(torch.as_tensor(ids))).numpy())
        with np.errstate(divide="ignore"):
            chosen.append(int(np.argmin(e / min_d2)))
    return np.array(chosen)


@pytest.mark.parametrize("scaled", [False, True])
def test_factored_distances_equal_materialised(scaled):
    outputs = pool_outputs()
    rows = outputs.unlabeled_rows
    scales = torch.rand(len(rows), 2, dtype=torch.float64) if scaled else None
    factored = gradient_embedding(outputs, rows, scales)
    dense = materialised(outputs, rows, scales)
    norms = factored.sq_norms()
    torch.testing.assert_close(norms, (dense ** 2).sum(1))
    for row in (0, 5, len(rows) - 1):
        torch.testing.assert_close(factored.sq_distances_to(row, norms), ((dense - dense[row]) ** 2).sum(1))
    torch.testing.assert_close(factored.materialize().norm(dim=1), dense.norm(dim=1))


@pytest.mark.parametrize("name", ["badge", "bmmal"])
def test_selection_equals_naive_kmeanspp(name):
    outputs = pool_outputs(n=60)
    rows = outputs.unlabeled_rows
    strategy = strategies.get(name)
    scales = strategy.modality_scales(outputs, rows) if name == "bmmal" else None
    expected = rows[naive_kmeanspp(materialised(outputs, rows, scales), 12, np.random.default_rng(3), rows)]
    np.testing.assert_array_equal(strategy.select(outputs, 12, seed=3), expected)


def test_first_pick_is_largest_norm_and_no_repeats():
    emb = random_embeddings(n=30, dims=(5,))["m0"]
    residual = torch.rand(30, 4, dtype=torch.float64)
    e = OuterProductEmbedding(residual, emb)
    chosen = kmeanspp_seeding(e, 30, np.random.default_rng(0))
    assert chosen[0] == int(torch.argmax(e.sq_norms()))
    assert sorted(chosen) == list(range(30))


def test_same_seed_same_rows():
    outputs = pool_outputs(n=80)
    s = strategies.get("bmmal")
    np.testing.assert_array_equal(s.select(outputs, 10, seed=7), s.select(outputs, 10, seed=7))
    assert not np.array_equal(s.select(outputs, 10, seed=7), s.select(outputs, 10, seed=8))


def test_zero_distance_rows_are_filled_at_random_with_a_warning():
    base = torch.ones(1, 3, dtype=torch.float64)
    e = OuterProductEmbedding(torch.tensor([[0.5, -0.5]] * 5 + [[0.1, -0.1]], dtype=torch.float64),
                              base.repeat(6, 1))
    with pytest.warns(RuntimeWarning, match="distance 0"):
        chosen = kmeanspp_seeding(e, 4, np.random.default_rng(0))
    assert chosen[0] == 0 and chosen[1] == 5  # 5 is the only row at positive distance
    assert len(set(chosen.tolist())) == 4


def test_duplicates_of_chosen_rows_are_not_picked_while_others_remain():
    z = torch.tensor([[1.0, 0.0]] * 10 + [[0.0, 1.0], [0.0, 2.0]])
    a = torch.tensor([[0.6, -0.6]] * 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = kmeanspp_seeding(OuterProductEmbedding(a, z), 3, np.random.default_rng(0))
    assert 11 in chosen and 10 in chosen  # both distinct rows come before any duplicate


def test_bmmal_with_equal_contributions_is_badge():
    outputs = pool_outputs(n=70)
    outputs.shapley = torch.ones_like(outputs.shapley)  # every modality contributes equally
    np.testing.assert_array_equal(strategies.get("bmmal").select(outputs, 15, seed=4),
                                  strategies.get("badge").select(outputs, 15, seed=4))


def test_bmmal_for_three_modalities_and_nan_contributions():
    outputs = pool_outputs(n=50, dims=(3, 2, 4))
    outputs.shapley[10:20] = float("nan")
    outputs.shapley[20:30] = 0.0
    scales = strategies.get("bmmal").modality_scales(outputs, outputs.unlabeled_rows)
    assert torch.isfinite(scales).all() and (scales <= 1).all() and (scales >= 0).all()
    assert torch.equal(scales[(10 - 6):(30 - 6)], torch.ones(20, 3, dtype=scales.dtype))
    outputs.shapley = torch.nan_to_num(outputs.shapley)
    rows = strategies.get("bmmal").select(outputs, 9, seed=0)
    assert len(set(rows.tolist())) == 9 and not outputs.labeled[rows].any()


def test_bmmal_computes_shapley_through_fuse_when_absent():
    outputs = pool_outputs(n=30)
    expected = strategies.get("bmmal").select(outputs, 5, seed=1)
    outputs.shapley = None
    np.testing.assert_array_equal(strategies.get("bmmal").select(outputs, 5, seed=1), expected)


def test_pool_embedding_on_the_original_blocks_equals_materialised():
    outputs = pool_outputs(n=30, dims=(4, 3, 2))
    bmmal = strategies.get("bmmal")
    rows = np.arange(30)
    scales = bmmal.modality_scales(outputs)
    factored = pool_gradient_embedding(outputs, scales)
    assert factored.nbytes() == 0  # fp32 (here float64) reads the caller's tensors: no copy
    dense = materialised(outputs, rows, scales)
    norms = factored.sq_norms()
    torch.testing.assert_close(norms, (dense ** 2).sum(1))
    for row in (0, 7, 29):
        torch.testing.assert_close(factored.sq_distances_to(row, norms), ((dense - dense[row]) ** 2).sum(1))


def split_parts(embedding, eligible, bounds):
    """The embedding's rows as several PoolParts (contiguous slices), as shards would hold them."""
    parts = []
    for a, b in itertools.pairwise(bounds):
        part = OuterProductEmbedding(embedding._residual.values[a:b], [f.values[a:b] for f in embedding._blocks],
                                     None if embedding.scales is None else embedding.scales[a:b])
        parts.append(PoolPart(part, eligible[a:b], offset=a))
    return LocalParts(parts)


@pytest.mark.parametrize("bounds", [(0, 1, 30, 44, 74), (0, 37, 74)])
def test_seeding_over_parts_equals_one_pool(bounds):
    outputs = pool_outputs(n=74)
    embedding = pool_gradient_embedding(outputs, strategies.get("bmmal").modality_scales(outputs))
    eligible = ~outputs.labeled
    for seed in range(4):
        whole = kmeanspp_seeding(embedding, 20, np.random.default_rng(seed), eligible)
        parts = kmeanspp_loop(split_parts(embedding, eligible, bounds), 20, np.random.default_rng(seed))
        np.testing.assert_array_equal(parts, whole)


def test_row_uniforms_are_splitmix64():
    def splitmix64(seed, i):  # the reference generator: state advanced i + 1 times
        mask = (1 << 64) - 1
        z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    index = torch.tensor([0, 1, 2, 12345, 2 ** 40 + 7])
    for key in (0, 42, 2 ** 63 - 1):
        expected = [((splitmix64(key, int(i)) >> 11) + 1) * 2.0 ** -53 for i in index]
        assert row_uniforms(key, row_counters(index)).tolist() == expected
    u = row_uniforms(7, row_counters(torch.arange(200_000)))
    assert 0 < float(u.min()) and float(u.max()) <= 1 and abs(float(u.mean()) - 0.5) < 0.005


def separated_pool(n_per=12, clusters=6, dims=(16, 8), seed=0):
    """Tight, far-apart clusters in both modalities and confident predictions of one class per cluster."""
    g = torch.Generator().manual_seed(seed)
    centres = [torch.randn(clusters, d, generator=g) * 10 for d in dims]
    label = torch.arange(clusters).repeat_interleave(n_per)
    emb = {f"m{i}": (c[label] + 0.01 * torch.randn(len(label), d, generator=g)).abs()
           for i, (c, d) in enumerate(zip(centres, dims))}
    probs = torch.full((len(label), clusters), 0.02)
    probs[torch.arange(len(label)), label] = 1 - 0.02 * (clusters - 1)
    shap = torch.rand(clusters, len(dims), clusters, generator=g)[label]  # one contribution pattern per cluster
    return PoolOutputs(labeled=torch.zeros(len(label), dtype=torch.bool), probs=probs, embeddings=emb, shapley=shap)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", ["badge", "bmmal"])
def test_reduced_precision_picks_valid_rows_and_agrees_with_fp32_when_separated(name, precision):
    outputs = separated_pool()
    outputs.labeled[::7] = True
    reduced = strategies.get(name, precision=precision)
    for seed in range(3):
        rows = reduced.select(outputs, 6, seed=seed)
        assert len(set(rows.tolist())) == 6 and not outputs.labeled[rows].any()
        clusters = rows // 12  # rows of one cluster are near-duplicates: which of them comes first is rounding
        np.testing.assert_array_equal(clusters, strategies.get(name).select(outputs, 6, seed=seed) // 12)
        assert len(set(clusters.tolist())) == 6


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_distances_are_close_and_factors_are_stored_small(precision):
    outputs = pool_outputs(n=50, dims=(64, 32))
    outputs.embeddings = {m: z.float() for m, z in outputs.embeddings.items()}
    outputs.probs = outputs.probs.float()
    exact = pool_gradient_embedding(outputs)
    reduced = pool_gradient_embedding(outputs, precision=precision)
    assert reduced.nbytes() == 50 * (64 + 32 + 5) * 2 + 3 * 50 * 4  # 2 bytes a number, a float32 norm a row
    exact_norms, reduced_norms = exact.sq_norms(), reduced.sq_norms()
    for row in (0, 20):
        bound = exact_norms + exact_norms[row]
        error = (reduced.sq_distances_to(row, reduced_norms) - exact.sq_distances_to(row, exact_norms)).abs() / bound
        assert float(error.max()) < 1e-2


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(BmmalError, match="precision must be one of fp32, bf16, fp16"):
        strategies.get("bmmal", precision="fp8")


def trained_like_pool(n=600, classes=8, dims=(32, 16), seed=0, labeled_share=0.2, signed=False):
    """A pool like a trained model's: class clusters in each modality (non-negative, as after a ReLU, unless
    `signed`), mostly confident predictions, some exactly one-hot (zero residual), some duplicated rows, some
    labelled rows."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(classes, (n,), generator=g)
    emb = {f"m{i}": torch.randn(classes, d, generator=g)[label] + 0.5 * torch.randn(n, d, generator=g)
           for i, d in enumerate(dims)}
    emb = emb if signed else {m: z.relu() for m, z in emb.items()}
    logits = 4 * torch.nn.functional.one_hot(label, classes).float() + torch.randn(n, classes, generator=g)
    probs = torch.softmax(logits, 1)
    probs[:20] = torch.nn.functional.one_hot(label[:20], classes).float()
    for z in emb.values():
        z[20:30] = z[30:40]
    probs[20:30] = probs[30:40]
    shap = torch.rand(n, len(dims), classes, generator=g)
    labeled = torch.rand(n, generator=g) < labeled_share
    return PoolOutputs(labeled=labeled, probs=probs, embeddings=emb, shapley=shap)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("name", ["badge", "bmmal"])
def test_skipping_rows_by_the_bound_keeps_the_selection(name, precision, monkeypatch):
    outputs = trained_like_pool(seed=len(name) + len(precision))
    strategy = strategies.get(name, precision=precision)
    monkeypatch.setattr(OuterProductEmbedding, "skip_by_bound", True)  # these rows are narrower than the default's
    bounded = [strategy.select(outputs, 80, seed=seed) for seed in range(3)]
    monkeypatch.setattr(OuterProductEmbedding, "skip_by_bound", False)
    for seed, rows in enumerate(bounded):
        np.testing.assert_array_equal(rows, strategy.select(outputs, 80, seed=seed))


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bound_keeps_nearest_distances_and_skips_most_rows(precision, signed):
    outputs = trained_like_pool(n=800, seed=3, signed=signed)
    bmmal = strategies.get("bmmal", precision=precision)
    parts = []
    for skip in (True, False):
        embedding = bmmal.embedding(outputs)
        embedding.skip_by_bound = skip
        part = PoolPart(embedding, ~outputs.labeled)
        chosen = kmeanspp_loop(LocalParts([part]), 100, np.random.default_rng(5))
        parts.append((part, chosen))
    (bounded, chosen), (full, full_chosen) = parts
    np.testing.assert_array_equal(chosen, full_chosen)
    open_rows = ~full.closed
    # a row the bound skipped keeps its value; one it computed may differ in the last float32 bits (a product
    # over a gathered block is summed by another BLAS kernel than over the whole factor); a wrongly skipped
    # row keeps a distance that the full pass lowers by much more than that
    torch.testing.assert_close(bounded.min_d2[open_rows], full.min_d2[open_rows], rtol=1e-6, atol=0)
    assert full.rows_computed == 800 * 99
    assert bounded.rows_computed < 0.25 * full.rows_computed


def test_bound_keeps_k_center_and_the_distances_of_plain_rows(monkeypatch):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 24, generator=g) * torch.rand(500, 1, generator=g) * 5  # norms from 0 to 5
    centres = torch.randn(3, 24, generator=g)
    coreset = strategies.get("coreset")
    outputs = PoolOutputs(labeled=torch.arange(500) < 3, probs=torch.full((500, 2), 0.5),
                          embeddings={"m": torch.cat([centres, x[3:]])})
    monkeypatch.setattr(OuterProductEmbedding, "skip_by_bound", True)
    rows = coreset.select(outputs, 40, seed=0)
    monkeypatch.setattr(OuterProductEmbedding, "skip_by_bound", False)
    np.testing.assert_array_equal(rows, coreset.select(outputs, 40, seed=0))


def test_by_default_the_bound_runs_only_on_wide_rows():
    computed = {}
    for dims in ((32, 16), (400, 200)):
        outputs = trained_like_pool(n=300, dims=dims, seed=1)
        part = PoolPart(strategies.get("badge").embedding(outputs), ~outputs.labeled)
        kmeanspp_loop(LocalParts([part]), 30, np.random.default_rng(0))
        computed[dims] = part.rows_computed / (300 * 29)
    assert computed[(32, 16)] == 1.0  # narrower than BOUND_MIN_WIDTH: the full pass
    assert computed[(400, 200)] < 0.5
