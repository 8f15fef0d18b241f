import copy
import math

import numpy as np
import pytest
import torch
import yaml

from bmmal import trainers
from bmmal.cli import main
from bmmal.config import ModelConfig, TrainConfig
from bmmal.datasets.synthetic import make_synthetic
from bmmal.errors import BmmalError
from bmmal.models import TrainingLoop, build_model
from bmmal.resolve import run_config
from bmmal.trainers.base import imbalance_ratios, loss_terms
from bmmal.trainers.mmpareto import min_norm_weight, pareto_combine
from bmmal.trainers.ogm_ge import modality_logits, ogm_coefficients
from bmmal.trainers.pmr import class_prototypes, pmr_coefficients, prototype_logits
from tests.conftest import small_model

ALL = ["joint", "mmpareto", "ogm_ge", "pmr"]
DATA = make_synthetic(n_samples=90, n_classes=3, informativeness=(3.0, 1.0, 0.5), dims=(6, 4, 3))
TWO = make_synthetic(n_samples=90, n_classes=3, informativeness=(3.0, 0.5), dims=(6, 4))


def fit(data, trainer="joint", params=None, epochs=1, fusion="concat", seed=3, **train):
    config = TrainConfig(epochs=epochs, batch_size=16, trainer=trainer, trainer_params=params or {}, **train)
    model = build_model(ModelConfig(fusion=fusion, hidden_dims=(16,), embed_dim=8), data, seed=seed)
    rows = np.arange(0, len(data), 2)
    return TrainingLoop(config).fit(model, data, rows, data.labels[rows], seed=seed)


def same_weights(a, b, exact=True):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        if exact:
            assert torch.equal(p, q), name
        else:
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def differs(a, b):
    return any(not torch.allclose(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_registry():
    assert trainers.available() == ALL
    assert TrainConfig().trainer == "joint"
    with pytest.raises(BmmalError, match="unknown trainer 'magic'"):
        trainers.get("magic")
    with pytest.raises(BmmalError, match="trainer 'ogm_ge': unknown parameter 'beta'; its parameters: alpha"):
        trainers.get("ogm_ge", beta=1)
    with pytest.raises(BmmalError, match="modulation_starts <= modulation_ends"):
        trainers.get("pmr", modulation_starts=5, modulation_ends=2)
    with pytest.raises(BmmalError, match="train.trainer: unknown trainer 'magic'"):
        run_config({"train": {"trainer": "magic"}})


# ---- each trainer reduces to joint training when its modulation is off ------------------------

@pytest.mark.parametrize("fusion", ["concat", "sum"])
@pytest.mark.parametrize("name, off, on", [
    ("ogm_ge", {"alpha": 0.0, "generalisation_enhancement": False}, {"alpha": 1.0}),
    ("ogm_ge", {"modulation_ends": 0}, {"alpha": 1.0, "generalisation_enhancement": False}),
    ("pmr", {"alpha": 0.0, "mu": 0.0}, {"alpha": 1.0, "mu": 0.5}),
    ("pmr", {"modulation_ends": 0}, {"alpha": 1.0}),
])
def test_modulation_off_is_joint_training(name, off, on, fusion):
    joint = fit(TWO, fusion=fusion)
    same_weights(fit(TWO, name, off, fusion=fusion), joint)
    assert differs(fit(TWO, name, on, fusion=fusion), joint)  # and on, it does change training


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_mmpareto_without_pareto_is_joint_training(fusion):
    joint = fit(DATA, fusion=fusion)
    same_weights(fit(DATA, "mmpareto", {"pareto": False}, fusion=fusion), joint, exact=False)


def test_joint_trainer_is_the_default_loop():
    same_weights(fit(TWO, "joint", epochs=2), fit(TWO, epochs=2))


# ---- OGM-GE ------------------------------------------------------------------------------------

def _softmax_true(row, target):
    return math.exp(row[target]) / sum(math.exp(v) for v in row)


def test_ogm_coefficient_on_a_hand_computed_batch():
    model = small_model(dims=(2, 2), num_classes=2, embed_dim=2)
    with torch.no_grad():
        model.fused_head.weight.copy_(torch.tensor([[2.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, -0.5]]))
        model.fused_head.bias.copy_(torch.tensor([0.4, -0.2]))
    z_a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    z_v = torch.tensor([[0.5, 1.0], [1.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 1, 0])
    out = type("Out", (), {"embeddings": {"m0": z_a, "m1": z_v}})()
    # by hand: modality a's logits W_a z_a + b/2 and v's W_v z_v + b/2, rows as lists
    logits_a = [[2.0 + 0.2, 0.0 - 0.1], [0.0 + 0.2, 2.0 - 0.1], [2.0 + 0.2, 1.0 - 0.1]]
    logits_v = [[0.25 + 0.2, -0.5 - 0.1], [0.5 + 0.2, 0.0 - 0.1], [0.0 + 0.2, 0.0 - 0.1]]
    split = modality_logits(model, out)
    torch.testing.assert_close(split["m0"], torch.tensor(logits_a))
    torch.testing.assert_close(split["m1"], torch.tensor(logits_v))
    s_a = sum(_softmax_true(r, t) for r, t in zip(logits_a, y.tolist()))
    s_v = sum(_softmax_true(r, t) for r, t in zip(logits_v, y.tolist()))
    assert s_a > s_v
    alpha = 0.7
    expected = [1 - math.tanh(alpha * (s_a / s_v - 1)), 1.0]
    torch.testing.assert_close(ogm_coefficients(split, y, alpha), torch.tensor(expected))


def test_imbalance_ratios_generalise_the_two_modality_ratio():
    torch.testing.assert_close(imbalance_ratios(torch.tensor([3.0, 2.0])), torch.tensor([1.5, 2 / 3]))
    torch.testing.assert_close(imbalance_ratios(torch.tensor([4.0, 2.0, 1.0])),
                               torch.tensor([4 / 1.5, 2 / 2.5, 1 / 3.0]))


def test_ogm_scales_encoder_gradients_and_leaves_heads():
    model = small_model(dims=(5, 3), num_classes=3)
    reference = copy.deepcopy(model)
    x = {"m0": torch.randn(8, 5), "m1": torch.randn(8, 3)}
    y = torch.arange(8) % 3
    config = TrainConfig()
    method = trainers.get("ogm_ge", alpha=2.0, generalisation_enhancement=False)
    method.start(model, config)
    out = model(x)
    method.backward(model, out, method.loss(out, y), y, lambda t: t)
    loss_terms(reference(x), y, config).total.backward()
    k = ogm_coefficients(modality_logits(model, out), y, 2.0)
    assert (k < 1).sum() == 1 and (k == 1).sum() == 1
    for i, m in enumerate(model.modalities):
        for p, q in zip(model.encoders[m].parameters(), reference.encoders[m].parameters()):
            torch.testing.assert_close(p.grad, q.grad * k[i])
    for p, q in zip(model.fused_head.parameters(), reference.fused_head.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


# ---- MMPareto ------------------------------------------------------------------------------------

def test_min_norm_weight_matches_a_grid_search():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        g1, g2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
        grid = torch.linspace(0, 1, 100001, dtype=torch.float64)
        norms = (grid[:, None] * g1 + (1 - grid[:, None]) * g2).norm(dim=1)
        assert abs(min_norm_weight(g1, g2).item() - grid[norms.argmin()].item()) < 1e-4


def test_pareto_combination_on_a_conflicting_case():
    g_multi = torch.tensor([1.0, 0.2, 0.0], dtype=torch.float64)
    g_uni = torch.tensor([-2.0, 1.5, 0.5], dtype=torch.float64)
    assert g_multi.dot(g_uni) < 0  # they conflict
    combined = pareto_combine(g_multi, g_uni)
    assert combined.dot(g_multi) >= 0 and combined.dot(g_uni) >= 0
    assert (g_multi + g_uni).dot(g_multi) < 0  # the plain sum would increase the multimodal loss
    torch.testing.assert_close(combined.norm(), (g_multi + g_uni).norm())
    # min-norm point: equal inner product with both gradients
    torch.testing.assert_close(combined.dot(g_multi), combined.dot(g_uni))
    # no conflict: the plain sum
    torch.testing.assert_close(pareto_combine(g_multi, g_multi * 3), g_multi * 4)
    torch.testing.assert_close(pareto_combine(g_multi, g_uni, pareto=False), g_multi + g_uni)


def test_mmpareto_encoder_gradient_agrees_with_both_losses():
    torch.manual_seed(0)
    model = small_model(dims=(5, 3), num_classes=3)
    x = {"m0": torch.randn(16, 5), "m1": torch.randn(16, 3)}
    y = torch.randint(0, 3, (16,))
    method = trainers.get("mmpareto")
    method.start(model, TrainConfig())
    out = model(x)
    terms = method.loss(out, y)
    per_loss = {}
    for name, loss in [("fused", terms.fused), *terms.unimodal.items()]:
        per_loss[name] = torch.autograd.grad(loss / terms.norm, list(model.parameters()), retain_graph=True,
                                             allow_unused=True)
    method.backward(model, out, terms, y, lambda t: t)
    params = list(model.parameters())
    for m in model.modalities:
        index = [i for i, p in enumerate(params) if any(p is q for q in model.encoders[m].parameters())]
        update = torch.cat([params[i].grad.reshape(-1) for i in index])
        for name in ("fused", m):
            task = torch.cat([per_loss[name][i].reshape(-1) for i in index])
            assert update.dot(task) >= -1e-9


# ---- PMR ----------------------------------------------------------------------------------------

def test_prototypes_are_class_means_and_absent_classes_are_left_out():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    y = torch.tensor([0, 0, 2])
    protos = class_prototypes(z, y, 3)
    torch.testing.assert_close(protos[0], torch.tensor([1.0, 0.0]))
    assert protos[1].isnan().all()
    torch.testing.assert_close(protos[2], torch.tensor([0.0, 4.0]))
    logits, positions = prototype_logits(torch.tensor([[1.0, 1.0]]), torch.tensor([2]), protos)
    torch.testing.assert_close(logits, torch.tensor([[-1.0, -math.sqrt(10.0)]]))
    assert positions.tolist() == [1]


def test_pmr_coefficients():
    beta, gamma = pmr_coefficients(torch.tensor([6.0, 3.0]), alpha=0.5, mu=0.2)
    torch.testing.assert_close(beta, torch.tensor([0.0, 0.5 * (2.0 - 1)]))  # alpha (rho_leader - 1)
    torch.testing.assert_close(gamma, torch.tensor([0.2, 0.0]))


# ---- every trainer, three modalities, both fusions, and the command line ------------------------

@pytest.mark.parametrize("fusion", ["concat", "sum"])
@pytest.mark.parametrize("name", ALL)
def test_every_trainer_trains_three_modalities(name, fusion):
    model = fit(DATA, name, epochs=30, fusion=fusion)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert differs(model, build_model(ModelConfig(fusion=fusion, hidden_dims=(16,), embed_dim=8), DATA, seed=3))
    with torch.no_grad():
        accuracy = (model(DATA.batch(np.arange(len(DATA)))).fused_logits.argmax(1).numpy() == DATA.labels).mean()
    assert accuracy > 0.5  # three classes: well above chance


def test_cli_trainer_option(tmp_path):
    config = {"dataset": {"name": "synthetic", "options": {"n_samples": 120, "n_classes": 3}},
              "strategy": "random", "initial_budget": 10, "budget": 10, "rounds": 1,
              "train": {"epochs": 2, "trainer": "pmr", "trainer_params": {"mu": 0.3}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "a"), "--trainer", "ogm_ge"]) == 0
    train = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["train"]
    assert train["trainer"] == "ogm_ge" and train["trainer_params"] == {}
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "b"), "--trainer", "magic"]) == 2
    assert not (tmp_path / "b").exists()
