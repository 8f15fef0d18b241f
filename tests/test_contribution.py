import itertools
import math

import pytest
import torch

from bmmal.contribution import contribution_shares, dominance_scales, shapley
from bmmal.errors import BmmalError
from tests.conftest import random_embeddings


def linear_fuse(dims, n_classes=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    weights = torch.randn(sum(dims), n_classes, generator=g, dtype=torch.float64)
    bias = torch.randn(n_classes, generator=g, dtype=torch.float64)
    return lambda z: torch.cat(list(z.values()), 1) @ weights + bias


def brute_force_shapley(fuse, emb):
    """phi_m by averaging marginal contributions over all M! orderings."""
    names = list(emb)
    n_mod = len(names)

    def value(coalition):
        masked = {m: z if m in coalition else torch.zeros_like(z) for m, z in emb.items()}
        return torch.softmax(fuse(masked), 1)

    phi = torch.zeros(len(emb[names[0]]), n_mod, value(()).shape[1], dtype=torch.float64)
    for order in itertools.permutations(names):
        for k, m in enumerate(order):
            phi[:, names.index(m)] += value(order[:k + 1]) - value(order[:k])
    return phi / math.factorial(n_mod)


@pytest.mark.parametrize("dims", [(4,), (4, 3), (4, 3, 2), (2, 2, 2, 3)])
def test_matches_permutation_definition(dims):
    emb = random_embeddings(dims=dims)
    fuse = linear_fuse(dims)
    torch.testing.assert_close(shapley(fuse, emb), brute_force_shapley(fuse, emb))


def test_efficiency():
    dims = (4, 3, 2)
    emb = random_embeddings(dims=dims)
    fuse = linear_fuse(dims)
    phi = shapley(fuse, emb)
    full = torch.softmax(fuse(emb), 1)
    none = torch.softmax(fuse({m: torch.zeros_like(z) for m, z in emb.items()}), 1)
    torch.testing.assert_close(phi.sum(1), full - none)


def test_two_modality_closed_form():
    dims = (4, 3)
    emb = random_embeddings(dims=dims)
    fuse = linear_fuse(dims)

    def v(keep):
        return torch.softmax(fuse({m: z if m in keep else torch.zeros_like(z) for m, z in emb.items()}), 1)

    phi = shapley(fuse, emb)
    torch.testing.assert_close(phi[:, 0], 0.5 * (v({"m0", "m1"}) - v({"m1"})) + 0.5 * (v({"m0"}) - v(set())))
    torch.testing.assert_close(phi[:, 1], 0.5 * (v({"m0", "m1"}) - v({"m0"})) + 0.5 * (v({"m1"}) - v(set())))


def test_symmetry_and_null_player():
    z = torch.randn(6, 3, dtype=torch.float64)
    emb = {"a": z, "b": z.clone(), "c": torch.randn(6, 2, dtype=torch.float64)}
    weights = torch.randn(3, 4, dtype=torch.float64)

    def fuse(e):  # a and b enter identically; c is ignored
        return (e["a"] + e["b"]) @ weights

    phi = shapley(fuse, emb)
    torch.testing.assert_close(phi[:, 0], phi[:, 1])
    torch.testing.assert_close(phi[:, 2], torch.zeros_like(phi[:, 2]))


def test_chunking_does_not_change_values():
    dims = (4, 3, 2)
    emb = random_embeddings(n=50, dims=dims)
    fuse = linear_fuse(dims)
    torch.testing.assert_close(shapley(fuse, emb, max_elements=8 * 5 * 3), shapley(fuse, emb))


def test_refuses_too_many_modalities():
    emb = {f"m{i}": torch.zeros(2, 1) for i in range(13)}
    with pytest.raises(BmmalError, match="M = 13"):
        shapley(lambda z: torch.zeros(2, 3), emb)


def test_shares_and_scales():
    phi = torch.zeros(3, 2, 2)
    phi[0, :, 1] = torch.tensor([0.3, -0.1])  # |.| shares 0.75 / 0.25 at class 1
    phi[1, :, 0] = torch.tensor([0.0, 0.0])  # 0/0: equal shares
    phi[2, :, 0] = torch.tensor([float("nan"), 1.0])  # NaN: equal shares
    shares = contribution_shares(phi, torch.tensor([1, 0, 0]))
    torch.testing.assert_close(shares, torch.tensor([[0.75, 0.25], [0.5, 0.5], [0.5, 0.5]]))
    scales = dominance_scales(shares)
    torch.testing.assert_close(scales, torch.tensor([[1.0, 0.5], [1.0, 1.0], [1.0, 1.0]]))
    # M = 2: the weak scale is twice the weak share
    torch.testing.assert_close(scales.min(1).values, 2 * shares.min(1).values)


def test_scales_for_three_modalities():
    shares = torch.tensor([[0.5, 0.3, 0.2]])
    torch.testing.assert_close(dominance_scales(shares), torch.tensor([[1.0, 0.8, 0.7]]))
