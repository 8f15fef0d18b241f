import numpy as np
import pytest
import torch

from bmmal.config import ModelConfig, TrainConfig
from bmmal.datasets.synthetic import make_synthetic
from bmmal.errors import BmmalError
from bmmal.models import MultimodalClassifier, TrainingLoop, build_model, multimodal_loss
from tests.conftest import small_model


def test_forward_shapes_and_fusion_linear_in_embeddings():
    model = small_model(dims=(5, 3, 2), num_classes=4)
    inputs = {"m0": torch.randn(7, 5), "m1": torch.randn(7, 3), "m2": torch.randn(7, 2)}
    out = model(inputs)
    assert out.fused_logits.shape == (7, 4)
    assert set(out.unimodal_logits) == {"m0", "m1", "m2"} and out.embeddings["m1"].shape == (7, 6)
    # fused logits of a concat head decompose into per-modality parts plus the bias
    zero = {m: torch.zeros_like(z) for m, z in out.embeddings.items()}
    parts = sum(model.fuse({**zero, m: out.embeddings[m]}) - model.fuse(zero) for m in model.modalities)
    torch.testing.assert_close(out.fused_logits, parts + model.fuse(zero))


def test_sum_fusion_is_mean_of_unimodal_heads():
    model = small_model(fusion="sum")
    inputs = {"m0": torch.randn(3, 5), "m1": torch.randn(3, 3)}
    out = model(inputs)
    torch.testing.assert_close(out.fused_logits, (out.unimodal_logits["m0"] + out.unimodal_logits["m1"]) / 2)


def test_unknown_fusion():
    with pytest.raises(BmmalError, match="unknown fusion"):
        MultimodalClassifier({"a": torch.nn.Identity()}, 2, fusion="gate")


def test_loss_weights_equal_by_default():
    model = small_model()
    out = model({"m0": torch.randn(4, 5), "m1": torch.randn(4, 3)})
    y = torch.tensor([0, 1, 2, 3])
    ce = torch.nn.functional.cross_entropy
    expected = (ce(out.fused_logits, y) + ce(out.unimodal_logits["m0"], y) + ce(out.unimodal_logits["m1"], y)) / 3
    torch.testing.assert_close(multimodal_loss(out, y, TrainConfig()), expected)


def _train(seed, config=None):
    data = make_synthetic(n_samples=120, n_classes=3, informativeness=(3.0, 1.0, 0.5), dims=(6, 4, 3))
    model = build_model(ModelConfig(), data, seed=seed)
    rows = np.arange(0, 120, 2)
    return TrainingLoop(config or TrainConfig(epochs=5)).fit(model, data, rows, data.labels[rows], seed=seed), data


def test_training_is_deterministic_and_learns_three_modalities():
    a, data = _train(1)
    b, _ = _train(1)
    c, _ = _train(2)
    for (name, p), q, r in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(p, q), name
    assert any(not torch.equal(p, r) for p, r in zip(a.state_dict().values(), c.state_dict().values()))
    trained, data = _train(0, TrainConfig(epochs=60))
    with torch.no_grad():
        pred = trained(data.batch(np.arange(1, 120, 2))).fused_logits.argmax(1).numpy()
    assert (pred == data.labels[1::2]).mean() > 0.8


def test_encoder_learning_rates_make_parameter_groups():
    from bmmal.models.training import make_optimizer

    model = small_model()
    optimizer = make_optimizer(model, TrainConfig(encoder_lr={"m0": 1e-5}))
    assert sorted(g["lr"] for g in optimizer.param_groups) == [1e-5, 1e-3, 1e-3]
