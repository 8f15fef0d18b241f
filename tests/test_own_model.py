"""bmmal with a model it has never seen: a user-written nn.Module (no bmmal base class) through bmmal.pool_outputs."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bmmal
from bmmal import strategies
from bmmal.config import RunConfig
from bmmal.errors import BmmalError
from bmmal.loop import ActiveLearner
from bmmal.rounds import round_seed


class TwoTower(nn.Module):
    """Written as a user would: two encoders and a fusion head, batches are (image, text) tuples."""

    def __init__(self, n_classes=4, dropout=0.2, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.image = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 6), nn.ReLU())
        self.text = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 3), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(9, 12), nn.Tanh(), nn.Linear(12, n_classes))  # not linear in z

    def embed(self, batch):
        return {"image": self.image(batch[0]), "text": self.text(batch[1])}

    def fuse(self, embeddings):
        return self.head(torch.cat([embeddings["image"], embeddings["text"]], dim=1))


def pool(n=90, seed=0):
    g = torch.Generator().manual_seed(seed)
    images, texts = torch.randn(n, 10, generator=g), torch.randn(n, 5, generator=g)
    labeled = np.zeros(n, dtype=bool)
    labeled[np.random.default_rng(seed).choice(n, 15, replace=False)] = True
    return DataLoader(TensorDataset(images, texts), batch_size=32, shuffle=False), images, texts, labeled


def direct_shapley(model, images, texts):
    """phi_m = sum over coalitions S without m of |S|! (M-|S|-1)! / M! (v(S+m) - v(S)), v = softmax of fuse."""
    with torch.no_grad():
        z = model.embed((images, texts))

        def v(members):
            return torch.softmax(model.fuse({m: t if m in members else torch.zeros_like(t) for m, t in z.items()}), 1)

        names = list(z)
        phi = []
        for m in names:
            others = [k for k in names if k != m]
            total = 0
            for size in range(len(others) + 1):
                for s in itertools.combinations(others, size):
                    weight = math.factorial(size) * math.factorial(len(names) - size - 1) / math.factorial(len(names))
                    total = total + weight * (v(set(s) | {m}) - v(set(s)))
            phi.append(total)
    return torch.stack(phi, dim=1)


def test_pool_outputs_of_a_user_model_match_direct_definitions():
    model = TwoTower().eval()
    loader, images, texts, labeled = pool()
    out = bmmal.pool_outputs(model, loader, labeled, {"embeddings", "shapley", "fuse"})
    assert isinstance(model, bmmal.MultimodalModel) and len(out) == 90 and out.labeled.numpy().tolist() == labeled.tolist()
    with torch.no_grad():
        z = model.embed((images, texts))
        torch.testing.assert_close(out.probs, torch.softmax(model.fuse(z), 1))
    assert list(out.embeddings) == ["image", "text"]
    torch.testing.assert_close(out.shapley, direct_shapley(model, images, texts), atol=1e-6, rtol=1e-5)
    assert out.unimodal_probs is None and out.mc_probs is None  # not asked for, not computed
    torch.testing.assert_close(out.fuse({m: t[:3] for m, t in out.embeddings.items()}), model.fuse(
        {m: t[:3] for m, t in z.items()}))


@pytest.mark.parametrize("name", strategies.available())
def test_every_strategy_runs_on_a_user_model(name):
    model = TwoTower()
    loader, _, _, labeled = pool()
    strategy = strategies.get(name)
    if "unimodal_probs" in strategy.needs:
        pytest.skip("a two-tower model without unimodal heads cannot give unimodal_probs")
    out = bmmal.pool_outputs(model, loader, labeled, strategy.needs, mc_passes=3, seed=1)
    for field in ("embeddings", "shapley", "mc_probs", "fuse"):
        assert (field in strategy.needs) == bool(getattr(out, field) is not None and getattr(out, field) != {})
    rows = strategy.select(out, budget=7, seed=3)
    assert len(set(rows.tolist())) == 7 and not labeled[rows].any()
    np.testing.assert_array_equal(rows, strategy.select(out, budget=7, seed=3))
    assert model.training  # pool_outputs leaves the model in the mode it found it in


def test_mc_passes_differ_and_repeat_with_the_seed():
    model = TwoTower(dropout=0.5)
    loader, _, _, labeled = pool()
    a = bmmal.pool_outputs(model, loader, labeled, {"mc_probs"}, mc_passes=4, seed=7).mc_probs
    b = bmmal.pool_outputs(model, loader, labeled, {"mc_probs"}, mc_passes=4, seed=7).mc_probs
    assert a.shape == (4, 90, 4) and torch.equal(a, b) and not torch.allclose(a[0], a[1])


@pytest.mark.parametrize("call, message", [
    (lambda m, d, l: bmmal.pool_outputs(m, d, l[:-1]), "the data yielded 90 rows but labeled has 89"),
    (lambda m, d, l: bmmal.pool_outputs(m, d, l.astype(int)), "labeled must be a 1-D bool array"),
    (lambda m, d, l: bmmal.pool_outputs(m, d, l, {"logits"}), "unknown PoolOutputs fields"),
    (lambda m, d, l: bmmal.pool_outputs(m, d, l, {"unimodal_probs"}), "no unimodal_logits() method"),
    (lambda m, d, l: bmmal.pool_outputs(nn.Linear(2, 2), d, l), "no embed() method"),
    (lambda m, d, l: bmmal.pool_outputs(m, d, l, batch_size=0), "batch_size must be a positive integer"),
    (lambda m, d, l: bmmal.pool_outputs(m, [], l), "the data yielded no batches"),
    (lambda m, d, l: bmmal.pool_outputs(m, d, l, "probs"), "got the string 'probs'"),
    (lambda m, d, l: bmmal.pool_outputs(m, DataLoader(d.dataset, batch_size=8, shuffle=True), l),
     "data shuffles its samples"),
])
def test_bad_arguments_are_one_line_errors(call, message):
    model = TwoTower()
    loader, _, _, labeled = pool()
    with pytest.raises(BmmalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(model, loader, labeled)


class UserCopy(nn.Module):
    """A user-written module holding the same weights as a bmmal MultimodalClassifier (concat fusion)."""

    def __init__(self, bmmal_model):
        super().__init__()
        self.towers = nn.ModuleList(copy.deepcopy(bmmal_model.encoders[m]) for m in bmmal_model.modalities)
        self.names = bmmal_model.modalities
        self.head = copy.deepcopy(bmmal_model.fused_head)

    def embed(self, batch):
        return {m: tower(x) for m, tower, x in zip(self.names, self.towers, batch)}

    def fuse(self, embeddings):
        return self.head(torch.cat([embeddings[m] for m in self.names], dim=1))


def test_bmmal_through_the_adapter_selects_what_the_loop_selects(tmp_path):
    config = RunConfig.model_validate({
        "dataset": {"name": "synthetic", "options": {"n_samples": 240, "n_classes": 3, "informativeness": [3.0, 0.8],
                                                     "dims": [6, 4]}},
        "strategy": "bmmal", "initial_budget": 12, "budget": 9, "rounds": 1, "seed": 4, "train": {"epochs": 10}})
    captured = {}

    def after(row):
        if row["round"] == 0:  # the model and labels the loop selects round 1 with
            captured.update(model=UserCopy(learner.model).eval(), labeled=learner.pool.labeled.copy())

    learner = ActiveLearner(config, tmp_path / "run", on_round=after)
    learner.run()
    train, user_model, labeled = learner.train_set, captured["model"], captured["labeled"]
    loop_rows = np.sort(learner.pool.selected_in(1))

    tensors = [torch.as_tensor(train.features[m], dtype=torch.float32) for m in train.modalities]
    loader = DataLoader(TensorDataset(*tensors), batch_size=64, shuffle=False)
    strategy = strategies.get("bmmal")
    out = bmmal.pool_outputs(user_model, loader, labeled, strategy.needs)
    rows = strategy.select(out, budget=9, seed=round_seed(4, 1))
    np.testing.assert_array_equal(np.sort(rows), loop_rows)


def test_bmmal_without_shapley_or_fuse_says_what_to_pass():
    model = TwoTower().eval()
    loader, _, _, labeled = pool()
    out = bmmal.pool_outputs(model, loader, labeled, {"embeddings"})
    with pytest.raises(BmmalError, match="pass shapley= .* or fuse="):
        strategies.get("bmmal").select(out, budget=3)
    assert "PoolOutputs(labeled=[90], probs=[90, 4], embeddings={image: [90, 6], text: [90, 3]}" in repr(out)
