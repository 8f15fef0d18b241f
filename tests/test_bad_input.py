"""Bad input of every class ends with exit code 2, one line on stderr naming the problem, no traceback, and no
file created or changed; the Python API raises a BmmalError naming the argument."""

import copy
import math

import numpy as np
import pytest
import torch
import yaml

from bmmal import datasets, strategies
from bmmal.cli import main
from bmmal.errors import BmmalError
from bmmal.outputs import PoolOutputs
from bmmal.strategies import get as get_strategy

TINY = {"dataset": {"name": "synthetic", "options": {"n_samples": 60, "n_classes": 3, "dims": 4}},
        "strategy": "random", "initial_budget": 6, "budget": 6, "rounds": 1, "train": {"epochs": 1},
        "selection_stats": False}


def snapshot(folder):
    """Every file and folder under `folder` with its bytes (None for a folder). SQLite's side files that a mere
    reader of a WAL database creates or updates are left out: the -shm index and an empty -wal log."""
    def reader_side_file(p):
        return p.name.endswith("-shm") or (p.name.endswith("-wal") and p.stat().st_size == 0)

    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*")) if not reader_side_file(p)}


def fails_with_one_line(capsys, folder, argv, *fragments):
    """`bmmal argv` exits 2 with one line on stderr holding every fragment, and leaves `folder` as it was."""
    capsys.readouterr()
    before = snapshot(folder)
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err.replace("\n", ""), err
    assert snapshot(folder) == before


def changed(**settings):
    """TINY with settings given as dotted keys ("train.lr") replaced."""
    data = copy.deepcopy(TINY)
    for dotted, value in settings.items():
        *parents, key = dotted.split(".")
        place = data
        for part in parents:
            place = place.setdefault(part, {})
        place[key] = value
    return yaml.safe_dump(data)


RUN_CONFIGS = {
    "bool as int": (changed(rounds=True), "rounds: expected a number or text, got true/false"),
    "bool as float": (changed(**{"train.lr": False}), "train.lr: expected a number"),
    "bool in a list": (changed(**{"model.hidden_dims": [True]}), "model.hidden_dims: expected a number"),
    "bool seed": (changed(seed=True), "seed: expected a number"),
    "key twice": ("seed: 1\nseed: 2\n" + changed(), "the key 'seed' is given twice"),
    "nested key twice": (changed().replace("  epochs: 1", "  epochs: 1\n  epochs: 2"), "the key 'epochs' is given twice"),
    "infinite float": (changed(**{"train.lr": math.inf}), "train.lr: Input should be a finite number"),
    "nan float": (changed(**{"model.dropout": math.nan}), "model.dropout: Input should be a finite number"),
    "empty modality list": (changed(**{"dataset.modalities": []}), "dataset.modalities: name at least one modality"),
    "modality twice": (changed(**{"dataset.modalities": ["m0", "m0"]}), "a modality is listed twice"),
    "encoder of no modality": (changed(**{"model.encoder": {"m7": "mlp"}}),
                               "model.encoder: dataset 'synthetic' has no modality 'm7'"),
    "encoder options of no modality": (changed(**{"model.encoder_options": {"nope": {}}}),
                                       "model.encoder_options: dataset 'synthetic' has no modality 'nope'"),
    "encoder lr of no modality": (changed(**{"train.encoder_lr": {"nope": 0.1}}), "train.encoder_lr"),
    "one class": (changed(**{"dataset.options.n_classes": 1}), "one class only"),
    "device that is not there": (changed(**{"train.device": "cuda:99"}), "train.device: 'cuda:99'"),
    "unknown device": (changed(**{"train.device": "gpu7"}), "unknown device 'gpu7'"),
    "negative seed": (changed(seed=-1), "seed: Input should be greater than or equal to 0"),
    "zero-dimensional data": (changed(**{"dataset.options.dims": 0}), "at least one dimension"),
    "latin-1 text": ("# caf\xe9\n" + changed(), "is not UTF-8 text"),
}


@pytest.mark.parametrize("text, message", list(RUN_CONFIGS.values()), ids=list(RUN_CONFIGS))
def test_bad_run_config_is_refused_before_anything_is_written(tmp_path, capsys, text, message):
    config = tmp_path / "config.yaml"
    config.write_bytes(text.encode("latin-1" if "caf\xe9" in text else "utf-8"))
    fails_with_one_line(capsys, tmp_path, ["run", "--config", config, "--out", tmp_path / "run"], message)


def test_a_byte_order_mark_is_accepted(tmp_path, capsys):
    from bmmal.config import load_yaml

    config = tmp_path / "config.yaml"
    config.write_bytes(b"\xef\xbb\xbf" + changed(seed=3).encode())
    assert load_yaml(config)["seed"] == 3


def test_out_inside_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text(changed())
    (tmp_path / "a-file").write_text("not a folder")
    fails_with_one_line(capsys, tmp_path, ["run", "--config", tmp_path / "config.yaml", "--out",
                                           tmp_path / "a-file" / "run"], "a-file", "Not a directory")


BENCHMARK = {"datasets": {"d": TINY["dataset"]}, "strategies": ["random"], "seeds": 1,
             "base": {"initial_budget": 6, "budget": 6, "rounds": 1, "train": {"epochs": 1}}}


@pytest.mark.parametrize("settings, message", [
    ({"name": "../outside"}, "name: '../outside' is not a plain folder name"),
    ({"name": "a/b"}, "is not a plain folder name"),
    ({"name": ".."}, "is not a plain folder name"),
    ({"name": "ok", "seeds": [0, -2]}, "a seed is a non-negative integer"),
    ({"name": "ok", "seeds": True}, "seeds: expected a number"),
])
def test_bad_benchmark_config(tmp_path, capsys, settings, message):
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump({**BENCHMARK, **settings}))
    (tmp_path / "benchmarks").mkdir()
    fails_with_one_line(capsys, tmp_path, ["benchmark", "--config", tmp_path / "bench.yaml", "--out",
                                           tmp_path / "benchmarks" / "b"], message)


HEADER = "dataset,setting,strategy,seed,round,n_labeled,metric,value\n"


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (HEADER.encode(), "holds no results (only a header)"),
    (b'\x00\xffgarbage\n"unclosed,\n', "is not a results table"),
    (b'a,"b\n', "is not a results table"),
    ((HEADER + "d,default,random,zero,0,6,accuracy_micro,0.5\n").encode(), "column 'seed'"),
    ((HEADER + "d,default,random,0,0,6,accuracy_micro,high\n").encode(), "column 'value'"),
    ((HEADER + "d,default,random,0,0,6,loss,0.5\n").encode(), "holds no accuracy_micro rows"),
])
def test_bad_results_table_in_report(tmp_path, capsys, content, message):
    (tmp_path / "results.csv").write_bytes(content)
    fails_with_one_line(capsys, tmp_path, ["report", tmp_path], "results.csv", message)


# --- the Python API: a BmmalError naming the argument -------------------------------------------------------

def pool(n=6, classes=3, **fields):
    probs = torch.full((n, classes), 1 / classes)
    base = {"labeled": torch.zeros(n, dtype=torch.bool), "probs": probs,
            "embeddings": {"a": torch.ones(n, 2), "b": torch.ones(n, 3)}}
    return {**base, **fields}


@pytest.mark.parametrize("fields, message", [
    (pool(labeled=torch.zeros(5, dtype=torch.bool)), "PoolOutputs.probs must be float [N, C] = [5, *]"),
    (pool(labeled=np.zeros(6, dtype=np.int64)), "PoolOutputs.labeled must be a bool vector"),
    (pool(probs=torch.full((6,), 0.5)), "PoolOutputs.probs must be float"),
    (pool(probs=torch.ones(6, 3, dtype=torch.int64)), "PoolOutputs.probs must be float"),
    (pool(probs=torch.randn(6, 3)), "PoolOutputs.probs"),
    (pool(probs=torch.full((6, 3), 0.5)), "PoolOutputs.probs rows must sum to 1"),
    (pool(probs=torch.tensor([[1.5, -0.5, 0.0]] * 6)), "PoolOutputs.probs holds negative probabilities"),
    (pool(probs=torch.full((6, 3), float("nan"))), "PoolOutputs.probs holds NaN"),
    (pool(embeddings=torch.ones(6, 2)), "PoolOutputs.embeddings must be a dict"),
    (pool(embeddings={"a": torch.ones(5, 2)}), "PoolOutputs.embeddings['a'] must be [N, d] with N = 6"),
    (pool(embeddings={"a": torch.ones(6)}), "PoolOutputs.embeddings['a']"),
    (pool(unimodal_probs=torch.ones(6, 3)), "PoolOutputs.unimodal_probs must be a dict"),
    (pool(unimodal_probs={"a": torch.ones(6, 3)}), "PoolOutputs.unimodal_probs['a'] rows must sum to 1"),
    (pool(shapley=torch.zeros(6, 3)), "PoolOutputs.shapley must be float [N, M, C] = [6, 2, 3]"),
    (pool(shapley=torch.zeros(6, 3, 3)), "PoolOutputs.shapley must be float [N, M, C] = [6, 2, 3]"),
    (pool(mc_probs=torch.full((6, 3), 1 / 3)), "PoolOutputs.mc_probs must be float [T, N, C]"),
    (pool(mc_probs=torch.full((4, 6, 3), 0.9)), "PoolOutputs.mc_probs rows must sum to 1"),
    (pool(present=torch.ones(6, 3, dtype=torch.bool)), "PoolOutputs.present has 3 modality columns"),
])
def test_malformed_pool_outputs_are_refused_on_construction(fields, message):
    with pytest.raises(BmmalError, match=None) as raised:
        PoolOutputs(**fields)
    assert message in str(raised.value)


def test_well_formed_pool_outputs_are_accepted():
    outputs = PoolOutputs(**pool(shapley=torch.zeros(6, 2, 3), mc_probs=torch.full((4, 6, 3), 1 / 3),
                                 unimodal_probs={"a": torch.full((6, 3), 1 / 3)}))
    assert len(outputs) == 6 and outputs.shapley.shape == (6, 2, 3)
    PoolOutputs(labeled=[], probs=torch.zeros(0, 3))  # an empty pool is not an error


@pytest.mark.parametrize("seed", [-1, True, 1.5, "3"])
def test_bad_seed_of_select_and_load(seed):
    outputs = PoolOutputs(**pool())
    with pytest.raises(BmmalError, match="seed must be a non-negative integer"):
        get_strategy("random").select(outputs, budget=2, seed=seed)
    with pytest.raises(BmmalError, match="seed must be a non-negative integer"):
        datasets.load("synthetic", seed=seed, n_samples=30, n_classes=2)


def test_select_wants_pool_outputs():
    with pytest.raises(BmmalError, match="outputs must be a PoolOutputs, got dict"):
        get_strategy("random").select(pool(), budget=2)


def test_modalities_given_as_one_string():
    with pytest.raises(BmmalError, match=r"modalities must be a list or tuple of modality names, got 'pix' "
                                         r"\(did you mean \('pix',\)\?\)"):
        datasets.load("mfeat", modalities="pix")


# --- text that is not UTF-8, cells too long for CSV, decompression bombs ---------------------------------------

def test_manifest_text_that_is_not_utf8_names_the_file(tmp_path):
    from bmmal.datasets.manifest import cell_input, read_rows

    (tmp_path / "latin.csv").write_bytes("id,caption,label\na,caf\xe9,x\n".encode("latin-1"))
    with pytest.raises(BmmalError, match=r"latin.csv is not UTF-8 text \(byte \d+\); save it as UTF-8"):
        read_rows(tmp_path / "latin.csv")
    (tmp_path / "latin.jsonl").write_bytes('{"id": "a", "caption": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(BmmalError, match="latin.jsonl is not UTF-8 text"):
        read_rows(tmp_path / "latin.jsonl")
    (tmp_path / "caption.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(BmmalError, match="caption.txt is not UTF-8 text"):
        cell_input("caption.txt", tmp_path)
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"id": "a", "caption": "ok"}\n')
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfhello")
    assert read_rows(tmp_path / "bom.jsonl")[0] == ["id", "caption"]
    assert cell_input("bom.txt", tmp_path) == ("text", "hello")


def test_a_very_long_csv_cell_is_one_line_with_a_way_out(tmp_path):
    from bmmal.datasets.manifest import read_rows

    (tmp_path / "long.csv").write_text("id,caption,label\na," + "word " * 60_000 + ",x\n")
    with pytest.raises(BmmalError, match=r"long.csv, line \d+: not valid CSV .*field limit.*put long text in a "
                                         r"\.txt file"):
        read_rows(tmp_path / "long.csv")


def test_a_decompression_bomb_is_refused_naming_the_image(tmp_path, monkeypatch):
    from PIL import Image

    from bmmal.features.image import load_image

    Image.new("RGB", (40, 40)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels: more than twice the limit
    with pytest.raises(BmmalError, match="cannot read image .*bomb.png"):
        load_image(tmp_path / "bomb.png")


# --- a labelling project's own files, damaged or deleted ----------------------------------------------------------

@pytest.fixture(scope="module")
def labelling_project(tmp_path_factory):
    """A labelling project after one query (labels.db, project.json, model.json, model.pt)."""
    from bmmal.labelling.query import query
    from test_labelling_helpers import new_project  # as the labelling tests import it: registered once

    root = tmp_path_factory.mktemp("labelling")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BMMAL_CACHE_DIR", str(root / "feature-cache"))
        project = new_project(root, n=21)
        query(project, 6, "random")
    return project.dir


def copied_project(labelling_project, tmp_path):
    import shutil

    return shutil.copytree(labelling_project, tmp_path / "project")


def _remove_database(folder):
    for suffix in ("", "-wal", "-shm"):
        (folder / f"labels.db{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("command", [["status"], ["export"], ["query", "--budget", "3"]])
def test_a_deleted_label_database_is_not_recreated_empty(labelling_project, tmp_path, capsys, command):
    project = copied_project(labelling_project, tmp_path)
    _remove_database(project)
    fails_with_one_line(capsys, tmp_path, [command[0], project, *command[1:]], "labels.db is missing",
                        "restore it from a backup")


@pytest.mark.parametrize("file, content, message", [
    ("project.json", b"[1, 2]", "project.json is not a valid project file (TypeError: a list"),
    ("project.json", b"", "project.json is damaged (not valid JSON"),
    ("project.json", b'{"version": "\xff"}', "project.json is damaged (not UTF-8 text)"),
    ("model.json", b"[1, 2]", "model.json is damaged (not what `bmmal query` writes)"),
    ("model.json", b"{}", "model.json is damaged (not what `bmmal query` writes)"),
    ("model.json", b'{"trained_on": 3, "validation": {"accuracy_micro": "high"}}', "model.json is damaged"),
    ("model.json", b'{"trained_on": 3, "pool_bal', "model.json is damaged (not valid JSON"),
])
def test_damaged_project_files_in_status(labelling_project, tmp_path, capsys, file, content, message):
    project = copied_project(labelling_project, tmp_path)
    (project / file).write_bytes(content)
    fails_with_one_line(capsys, tmp_path, ["status", project], message)


def test_init_where_the_project_path_is_a_file(labelling_project, tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    manifest = next(labelling_project.parent.glob("data/*.csv"))
    fails_with_one_line(capsys, tmp_path, ["init", tmp_path / "a-file" / "project", "--manifest", manifest,
                                           "--classes", "red,green,blue"], "cannot be a project folder", "a-file is a file")


def test_a_folder_given_as_the_config(tmp_path, capsys):
    fails_with_one_line(capsys, tmp_path, ["run", "--config", tmp_path], "is a folder; give the YAML config file")


def test_outputs_that_require_gradients_are_detached_and_selectable():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 4, generator=g).requires_grad_()  # a model's outputs taken outside torch.no_grad()
    z = torch.randn(40, 8, generator=g).requires_grad_()
    outputs = PoolOutputs(labeled=torch.arange(40) < 5, probs=torch.softmax(logits, 1), embeddings={"a": z * 1.0})
    assert not outputs.probs.requires_grad and not outputs.embeddings["a"].requires_grad
    for name in ("badge", "coreset", "kmeans"):
        assert len(strategies.get(name).select(outputs, 5, seed=0)) == 5


def test_a_non_finite_input_is_blamed_on_itself_not_on_what_is_derived_from_it():
    n = 30
    z = {"a": torch.randn(n, 4), "b": torch.randn(n, 3)}
    z["a"][7, 1] = float("inf")
    head = torch.nn.Linear(7, 3)

    def fuse(e):
        return head(torch.cat([e["a"], e["b"]], 1))

    with torch.no_grad():
        probs = torch.softmax(fuse({"a": z["a"].nan_to_num(posinf=0.0), "b": z["b"]}), 1)
    outputs = PoolOutputs(labeled=torch.zeros(n, dtype=torch.bool), probs=probs, embeddings=z, fuse=fuse)
    with pytest.raises(BmmalError, match=r"PoolOutputs\.embeddings has NaN or infinite values"):
        strategies.get("bmmal").select(outputs, 3, seed=0)  # its Shapley values, computed from them, are NaN too
