import numpy as np
import pytest
import torch

from bmmal.models import MultimodalClassifier
from bmmal.models.encoders import MLPEncoder


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)  # identical float summation order run to run
    yield


def small_model(dims=(5, 3), num_classes=4, embed_dim=6, fusion="concat", seed=0, dropout=0.0):
    torch.manual_seed(seed)
    encoders = {f"m{i}": MLPEncoder((d,), hidden_dims=(8,), embed_dim=embed_dim, dropout=dropout)
                for i, d in enumerate(dims)}
    return MultimodalClassifier(encoders, num_classes, fusion=fusion).eval()


def random_embeddings(n=7, dims=(4, 3, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f"m{i}": torch.randn(n, d, generator=g, dtype=torch.float64) for i, d in enumerate(dims)}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
