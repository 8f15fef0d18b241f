"""Pools where some samples lack a modality: data masks, the model's zero embedding, present-only training
statistics, Shapley values and BMMAL over the present modalities, metrics, and a run that resumes."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import bmmal
from bmmal import datasets, strategies
from bmmal.cli import main
from bmmal.config import ModelConfig, RunConfig, TrainConfig
from bmmal.contribution import contribution_shares, shapley
from bmmal.data import ArrayDataset, standardize
from bmmal.datasets.arrays import load_arrays
from bmmal.errors import BmmalError
from bmmal.loop import ActiveLearner
from bmmal.metrics import evaluate
from bmmal.models import TrainingLoop, build_model
from bmmal.outputs import PoolOutputs
from bmmal.testing import INCOMPLETE_VARIANTS, contract_outputs
from bmmal.trainers import loss_terms
from bmmal.trainers.ogm_ge import ogm_coefficients
from tests.test_kmeanspp import materialised, naive_kmeanspp


def close(actual, expected, atol=1e-6):
    """Elementwise equal within float tolerance (numpy's check: torch.testing imports torch.distributed)."""
    np.testing.assert_allclose(torch.as_tensor(actual).detach().double().numpy(),
                               torch.as_tensor(expected).detach().double().numpy(), rtol=1e-5, atol=atol)


def incomplete_npz(path, n=120, seed=0, nan_in_absent=True):
    """Two informative modalities a [n, 4] and b [n, 3], 3 classes; b absent from a third of the rows."""
    g = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    a = g.normal(size=(n, 4)) + labels[:, None] * 1.5
    b = g.normal(size=(n, 3)) * 3 + 10 - labels[:, None] * 2.0
    has_b = g.random(n) > 1 / 3
    if nan_in_absent:
        b[~has_b] = np.nan
    np.savez(path, a=a.astype(np.float32), b=b.astype(np.float32), labels=labels, **{"present:b": has_b})
    return path, has_b, b


def test_npz_masks_load_with_the_mask_and_present_only_standardisation(tmp_path):
    path, has_b, _ = incomplete_npz(tmp_path / "x.npz")
    whole = load_arrays(path)
    np.testing.assert_array_equal(whole.present, np.stack([np.ones_like(has_b), has_b], 1))
    train, test = load_arrays(path, test_fraction=0.25, seed=1)
    rows = np.array([int(i.rsplit("-", 1)[1]) for i in train.ids])
    np.testing.assert_array_equal(train.present[:, 1], has_b[rows])
    b = train.features["b"]
    present = train.present[:, 1]
    np.testing.assert_allclose(b[present].mean(0), 0, atol=1e-5)  # statistics of the present rows only
    np.testing.assert_allclose(b[present].std(0), 1, atol=1e-4)
    assert (b[~present] == 0).all() and np.isfinite(test.features["b"]).all()
    batch = train.batch(np.arange(len(train)))
    assert torch.isnan(batch["b"][torch.as_tensor(~present)]).all()
    assert torch.isfinite(batch["b"][torch.as_tensor(present)]).all() and torch.isfinite(batch["a"]).all()
    assert whole.select_modalities(["b", "a"]).present[:, 0].tolist() == has_b.tolist()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update({"present:c": np.ones(60, bool)}), "mask 'present:c' names no modality"),
    (lambda d: d.update({"present:b": np.ones(59, bool)}), "must be a bool array of shape (60,)"),
    (lambda d: d.update({"present:b": np.ones(60, np.int64)}), "must be a bool array of shape (60,)"),
    (lambda d: d.update({"present:a": ~d["present:b"]} | {"present:b": np.zeros(60, bool)}),
     "samples have no modality at all"),
    (lambda d: d["a"].__setitem__(0, np.nan), "modality 'a' has NaN or infinite values in 1 samples"),
])
def test_bad_masks_are_one_line_errors(tmp_path, change, message):
    path, *_ = incomplete_npz(tmp_path / "x.npz", n=60)
    arrays = dict(np.load(path))
    change(arrays)
    np.savez(path, **arrays)
    with pytest.raises(BmmalError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_arrays(path)
    assert "\n" not in str(error.value)


def test_bad_mask_in_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    path, *_ = incomplete_npz(tmp_path / "x.npz", n=60)
    arrays = dict(np.load(path))
    arrays["present:b"] = arrays["present:b"].astype(np.int8)
    np.savez(path, **arrays)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"name": "arrays", "options": {"path": str(path)}},
                                      "strategy": "bmmal", "initial_budget": 6, "budget": 6, "rounds": 1}))
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "present:b" in err and len(err.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_drop_option_is_seeded_on_train_and_test():
    train, test = datasets.load("mfeat", ("pix", "mor"), seed=0, drop={"pix": 0.3})
    again, _ = datasets.load("mfeat", ("pix", "mor"), seed=0, drop={"pix": 0.3})
    other, _ = datasets.load("mfeat", ("pix", "mor"), seed=1, drop={"pix": 0.3})
    for ds in (train, test):
        assert abs((~ds.present[:, 0]).mean() - 0.3) < 0.01 and ds.present[:, 1].all()
    np.testing.assert_array_equal(train.present, again.present)
    assert not np.array_equal(train.present, other.present[np.argsort(other.ids)][np.argsort(np.argsort(train.ids))])
    with pytest.raises(BmmalError, match="drop names modality 'fac'"):
        datasets.load("mfeat", ("pix", "mor"), drop={"fac": 0.5})
    with pytest.raises(BmmalError, match="drop.pix must be a fraction"):
        datasets.load("mfeat", ("pix", "mor"), drop={"pix": 1.5})


def _three_modality_pool(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    dims = (3, 2, 4)
    emb = {f"m{i}": torch.randn(n, d, generator=g, dtype=torch.float64) for i, d in enumerate(dims)}
    w1 = torch.randn(sum(dims), 6, generator=g, dtype=torch.float64)
    w2 = torch.randn(6, 5, generator=g, dtype=torch.float64)

    def fuse(z):  # non-linear: Shapley values are not additive here
        return torch.tanh(torch.cat(list(z.values()), 1) @ w1) @ w2

    present = torch.rand(n, 3, generator=g) > 0.4
    present[~present.any(1), 0] = True
    return emb, fuse, present


def direct_shapley(fuse, emb, present):
    """The definition over each row's present players: phi_m = sum_S |S|!(p-|S|-1)!/p! (v(S + m) - v(S))."""
    names = list(emb)
    out = torch.zeros(len(present), len(names), fuse({m: z[:1] for m, z in emb.items()}).shape[1], dtype=torch.float64)
    for r in range(len(present)):
        row = {m: z[r:r + 1] for m, z in emb.items()}
        values = {frozenset(s): torch.softmax(fuse({m: row[m] if i in s else torch.zeros_like(row[m])
                                                    for i, m in enumerate(names)}), 1)[0]
                  for size in range(len(names) + 1) for s in itertools.combinations(range(len(names)), size)}
        players = [i for i in range(len(names)) if present[r, i]]
        p = len(players)
        for i in players:
            others = [j for j in players if j != i]
            for size in range(p):
                for s in itertools.combinations(others, size):
                    weight = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
                    out[r, i] += weight * (values[frozenset(s) | {i}] - values[frozenset(s)])
    return out


def test_shapley_of_an_absent_modality_is_zero_and_efficiency_holds_over_the_present():
    emb, fuse, present = _three_modality_pool()
    noisy = {m: torch.where(present[:, i, None], z, torch.full_like(z, 7.0)) for i, (m, z) in enumerate(emb.items())}
    phi = shapley(fuse, noisy, present=present)  # what absent rows hold does not matter
    assert (phi[~present] == 0).all()
    close(phi, direct_shapley(fuse, emb, present))
    zeroed = {m: torch.where(present[:, i, None], z, torch.zeros_like(z)) for i, (m, z) in enumerate(emb.items())}
    v_all = torch.softmax(fuse(zeroed), 1)
    v_none = torch.softmax(fuse({m: torch.zeros_like(z) for m, z in emb.items()}), 1)
    close(phi.sum(1), v_all - v_none)


def test_shares_over_present_modalities():
    phi = torch.tensor([[[0.3], [0.5], [0.2]], [[0.4], [0.0], [0.0]], [[0.0], [0.0], [0.0]]])
    present = torch.tensor([[True, True, False], [True, False, False], [True, False, True]])
    shares = contribution_shares(phi, torch.zeros(3, dtype=torch.long), present)
    close(shares, torch.tensor([[0.375, 0.625, 0.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.5]]))


def test_bmmal_on_an_incomplete_pool_equals_the_materialised_reference():
    emb, fuse, present = _three_modality_pool(n=60, seed=3)
    emb = {m: torch.where(present[:, i, None], z, torch.zeros_like(z)) for i, (m, z) in enumerate(emb.items())}
    labeled = torch.zeros(60, dtype=torch.bool)
    labeled[:8] = True
    probs = torch.softmax(fuse(emb), 1)
    outputs = PoolOutputs(labeled=labeled, probs=probs, embeddings=emb, fuse=fuse, present=present)
    rows = outputs.unlabeled_rows
    # the reference, by hand: shares at the pseudo-label over present modalities, s_m = 1 - (max c - c_m)
    phi = direct_shapley(fuse, emb, present)[rows]
    at = phi[torch.arange(len(rows)), :, probs[rows].argmax(1)].abs()
    shares = torch.zeros_like(at)
    for r in range(len(rows)):
        p = present[rows[r]]
        shares[r] = at[r] / at[r].sum() if at[r].sum() > 0 else p.double() / p.sum()
    scales = 1 - (shares.max(1, keepdim=True).values - shares)
    expected = rows[naive_kmeanspp(materialised(outputs, rows, scales), 10, np.random.default_rng(4), rows)]
    np.testing.assert_array_equal(strategies.get("bmmal").select(outputs, 10, seed=4), expected)


def test_contract_pools_with_missing_modalities_are_what_they_say():
    text_gone = contract_outputs("text_absent_unlabeled")
    unlabeled = ~text_gone.labeled
    assert not text_gone.present[unlabeled, 1].any() and text_gone.present[~unlabeled].all()
    assert (text_gone.embeddings["text"][unlabeled] == 0).all() and (text_gone.shapley[unlabeled, 1] == 0).all()
    mostly = contract_outputs("mostly_one_modality")
    assert (mostly.present.sum(1) == 1).float().mean() > 0.6
    assert set(INCOMPLETE_VARIANTS) <= set(bmmal.testing.VARIANTS)  # so check_strategy runs them for every strategy


def _half_absent(n=64, seed=0):
    g = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    feats = {"a": (g.normal(size=(n, 5)) + labels[:, None]).astype(np.float32),
             "b": (g.normal(size=(n, 3)) - labels[:, None]).astype(np.float32)}
    present = np.ones((n, 2), dtype=bool)
    present[::2, 1] = False
    return ArrayDataset(feats, labels, tuple("wxyz"), present=present)


def test_the_unimodal_head_of_a_modality_ignores_rows_without_it():
    data = _half_absent()
    model = build_model(ModelConfig(), data, seed=0).train()
    batch = data.batch(np.arange(16))
    targets = torch.as_tensor(data.labels[:16])
    out = model(batch)
    assert (out.embeddings["b"][0::2] == 0).all() and (out.embeddings["b"][1::2] != 0).any(1).all()
    assert out.present["b"].tolist() == [i % 2 == 1 for i in range(16)]

    def head_gradient(t):
        model.zero_grad()
        torch.manual_seed(0)  # the same dropout masks
        loss_terms(model(batch), t, TrainConfig()).unimodal["b"].backward()
        return model.unimodal_heads["b"].weight.grad.clone()

    other = targets.clone()
    other[0::2] = (other[0::2] + 1) % 4  # new labels on the rows without b only
    close(head_gradient(targets), head_gradient(other))
    expected = torch.nn.functional.cross_entropy(out.unimodal_logits["b"][1::2], targets[1::2])
    close(loss_terms(out, targets, TrainConfig()).unimodal["b"], expected)


def test_ogm_ge_statistics_use_present_rows_only():
    g = torch.Generator().manual_seed(0)
    logits = {"a": torch.randn(10, 3, generator=g), "b": torch.randn(10, 3, generator=g)}
    targets = torch.arange(10) % 3
    present = {"a": torch.ones(10, dtype=torch.bool), "b": torch.arange(10) < 6}
    spoiled = {"a": logits["a"], "b": logits["b"].clone()}
    spoiled["b"][6:] = torch.tensor([100.0, -100.0, 0.0])
    close(ogm_coefficients(logits, targets, 0.5, present),
                               ogm_coefficients(spoiled, targets, 0.5, present))


@pytest.mark.parametrize("trainer", ["joint", "ogm_ge", "pmr", "mmpareto"])
def test_every_trainer_trains_with_a_modality_absent_from_half_the_samples(trainer):
    data = _half_absent()
    config = TrainConfig(epochs=3, batch_size=16, trainer=trainer, device="cpu")
    model = TrainingLoop(config).fit(build_model(ModelConfig(), data, 0), data, np.arange(64), data.labels, seed=0)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model.absent_logits.abs().sum() > 0  # the learned absent offset is trained


def test_pool_outputs_and_metrics_on_an_incomplete_pool():
    data = _half_absent()
    model = build_model(ModelConfig(absent="zeros"), data, seed=0).eval()
    outputs = bmmal.pool_outputs(model, data, np.zeros(64, bool), ("embeddings", "shapley", "unimodal_probs"))
    np.testing.assert_array_equal(outputs.present.numpy(), data.present)
    assert (outputs.embeddings["b"][0::2] == 0).all() and (outputs.shapley[0::2, 1] == 0).all()

    class NanModel(torch.nn.Module):  # a user's model that knows nothing of missing modalities
        def __init__(self):
            super().__init__()
            self.inner = model

        def embed(self, batch):
            return {m: self.inner.encoders[m](x) for m, x in batch.items()}

        def fuse(self, z):
            return self.inner.fuse(z)

    theirs = bmmal.pool_outputs(NanModel(), data, np.zeros(64, bool), ("embeddings", "shapley"))
    close(theirs.probs, outputs.probs)
    close(theirs.shapley, outputs.shapley)
    metrics = evaluate(model, data)
    pred = outputs.probs.argmax(1).numpy()
    complete = data.present.all(1)
    assert metrics["n_complete"] == 32 and metrics["n_incomplete"] == 32
    assert metrics["accuracy_micro:complete"] == pytest.approx((pred == data.labels)[complete].mean())
    assert metrics["accuracy_micro:incomplete"] == pytest.approx((pred == data.labels)[~complete].mean())
    uni_b = outputs.unimodal_probs["b"].argmax(1).numpy()
    assert metrics["unimodal_accuracy_micro:b"] == pytest.approx((uni_b == data.labels)[1::2].mean())


def test_standardize_ignores_absent_rows():
    data = _half_absent()
    features = dict(data.features)
    features["b"] = features["b"].copy()
    features["b"][0::2] = np.nan
    train, = standardize(ArrayDataset(features, data.labels, data.classes, present=data.present))
    np.testing.assert_allclose(train.features["b"][1::2].mean(0), 0, atol=1e-5)
    assert (train.features["b"][0::2] == 0).all()


def test_a_run_on_an_incomplete_npz_finishes_and_resumes_to_the_same_result(tmp_path):
    path, *_ = incomplete_npz(tmp_path / "x.npz", n=100)
    settings = {"dataset": {"name": "arrays", "options": {"path": str(path)}}, "strategy": "bmmal",
                "initial_budget": 12, "budget": 8, "rounds": 2, "seed": 2, "train": {"epochs": 5}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(settings))
    assert main(["run", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "full")]) == 0

    class Interrupt(Exception):
        pass

    def crash_after_round_1(row):
        if row["round"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        ActiveLearner(RunConfig.model_validate(settings), tmp_path / "cut", on_round=crash_after_round_1).run()
    assert main(["resume", str(tmp_path / "cut")]) == 0
    full, resumed = (pd.read_csv(tmp_path / run / "metrics.csv") for run in ("full", "cut"))
    assert "accuracy_micro:incomplete" in full and "selected_complete" in full and len(full) == 3
    timing = [c for c in full if c.endswith("_seconds")]
    pd.testing.assert_frame_equal(resumed.drop(columns=timing), full.drop(columns=timing))
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["pool"] == \
           json.loads((tmp_path / "full" / "state.json").read_text())["pool"]


def test_report_shows_complete_and_incomplete_accuracy_and_selection_counts():
    from bmmal.experiment.report import completeness_section

    rows = []
    for strategy, share in (("random", 0.5), ("bmmal", 0.75)):
        for seed in (0, 1):
            for r in (0, 1):
                rows.append({"strategy": strategy, "seed": seed, "round": r, "n_labeled": 20 + 20 * r,
                             "accuracy_micro:complete": 0.9, "accuracy_micro:incomplete": 0.6 + 0.1 * seed,
                             "n_complete": 160, "n_incomplete": 240, "pool_complete": 0.4,
                             "selected_complete": share if r else np.nan})
    text = "\n".join(completeness_section(pd.DataFrame(rows), ["random", "bmmal"]))
    assert "| bmmal | 1 | 40 | 0.900 | 0.650 | 15.0 | 5.0 | 0.400 |" in text
    assert "| random | 1 | 40 | 0.900 | 0.650 | 10.0 | 10.0 | 0.400 |" in text
    assert "160 complete and 240 incomplete" in text
    assert completeness_section(pd.DataFrame(rows).drop(columns=["accuracy_micro:incomplete"]), ["random"]) == []


def test_labelling_shows_and_exports_a_missing_modality(tmp_path):
    from PIL import Image

    from bmmal.labelling.labelstudio import task
    from bmmal.labelling.samples import Samples

    (tmp_path / "media").mkdir()
    lines = ["id,label,image,caption"]
    for i in range(4):
        Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(tmp_path / "media" / f"s{i:03d}.png")
        lines.append(f"s{i:03d},,media/s{i:03d}.png,a red thing {i}")
    lines[2] = "s001,,media/s001.png,"  # no caption
    lines[3] = "s002,,,"  # nothing at all
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    samples = Samples(manifest)
    assert samples.missing("s001") == ["caption"] and samples.missing("s000") == []
    assert samples.problem("s001") is None and samples.kind("caption") == "text"
    assert samples.problem("s002") == "every modality of it is empty in the manifest"
    data = task("s001", samples, None, "image", tmp_path, "/data/", "v")["data"]
    assert data["missing"] == ["caption"] and data["caption"] == "" and data["image"].endswith("s001.png")
    assert "missing" not in task("s000", samples, None, "image", tmp_path, "/data/", "v")["data"]
    from types import SimpleNamespace

    from bmmal.labelling.api import LabellingApp

    app = object.__new__(LabellingApp)  # only the parts `sample` reads: the samples and a store without a batch
    app.samples, app.store = samples, SimpleNamespace(batch_item=lambda sample_id: None)
    fields = {f["name"]: f for f in app.sample("s001")["fields"]}
    assert fields["caption"] == {"name": "caption", "kind": "text", "missing": True} and "url" in fields["image"]
    lines[4] = "s003,,,a thing without an image"
    manifest.write_text("\n".join(lines) + "\n")
    app.samples = Samples(manifest)
    with pytest.raises(FileNotFoundError):  # the server answers 404 "no such media", not a 500
        app.media("s003", "image")


def test_a_checkpoint_without_the_absent_offset_loads_as_offset_zero():
    data = _half_absent()
    old = build_model(ModelConfig(absent="zeros"), data, seed=0).state_dict()
    model = build_model(ModelConfig(), data, seed=1)
    model.load_state_dict(old)
    assert (model.absent_logits == 0).all()
    batch = data.batch(np.arange(8))
    reference = build_model(ModelConfig(absent="zeros"), data, seed=0).eval()
    close(model.eval()(batch).fused_logits, reference(batch).fused_logits)
