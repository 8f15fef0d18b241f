"""Pool inference through Ray Data (`write_pool_shards(executor="ray")`) on one local Ray with 2 CPUs: the same
shards as the local path, resumable per shard, clear errors when a model call fails or an actor dies."""

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bmmal import strategies
from bmmal.data import ArrayDataset
from bmmal.errors import BmmalError
from bmmal.inference import pool_outputs
from conftest import small_model

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
from bmmal import distributed
from bmmal.distributed import ray_writer
from test_distributed import local_ray  # noqa: F401 (a fixture: one local Ray with 2 CPUs for this module)

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test module
pytestmark = pytest.mark.usefixtures("local_ray")

N, ROWS_PER_SHARD = 300, 50  # six shards
NEEDS = tuple(strategies.get("bmmal").needs)


class Logged(nn.Module):
    """The model, appending its process id to `log` whenever it is unpickled (once per actor that loads it)."""

    def __init__(self, model, log: Path):
        super().__init__()
        self.model, self.log = model, str(log)

    def __setstate__(self, state):
        super().__setstate__(state)
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")

    def embed(self, batch):
        return self.model.embed(batch)

    def fuse(self, embeddings):
        return self.model.fuse(embeddings)


class Poisoned(Logged):
    """The model, failing on a batch that holds the given row of modality m0: it raises (`raise`), or its
    process ends (`kill`), as if killed."""

    def __init__(self, model, log, row_features, action):
        super().__init__(model, log)
        self.row, self.action = torch.as_tensor(row_features), action

    def embed(self, batch):
        if (batch["m0"] == self.row).all(dim=1).any():
            if self.action == "raise":
                raise RuntimeError("the encoder failed on this batch")
            os._exit(1)
        return self.model.embed(batch)


@pytest.fixture(scope="module")
def pool():
    g = np.random.default_rng(0)
    dataset = ArrayDataset({"m0": g.normal(size=(N, 5)).astype(np.float32), "m1": g.normal(size=(N, 3)).astype(np.float32)},
                           g.integers(0, 4, N), ("a", "b", "c", "d"))
    labeled = g.random(N) < 0.1
    return small_model(), dataset, labeled


@pytest.fixture(scope="module")
def local_shards(pool, tmp_path_factory):
    model, dataset, labeled = pool
    return distributed.write_pool_shards(model, dataset, labeled, NEEDS, tmp_path_factory.mktemp("local"),
                                         ROWS_PER_SHARD)


def files(shard: Path) -> dict[str, np.ndarray]:
    return {f.name: np.load(f) for f in sorted(shard.glob("*.npy"))}


def assert_same_shards(paths, expected_paths):
    assert [p.name for p in paths] == [p.name for p in expected_paths]
    for path, expected in zip(paths, expected_paths):
        arrays, expected_arrays = files(path), files(expected)
        assert list(arrays) == list(expected_arrays) and "shapley.npy" in arrays
        for name, array in arrays.items():
            assert array.dtype == expected_arrays[name].dtype and np.array_equal(array, expected_arrays[name]), name
        assert (path / "shard.json").read_text() == (expected / "shard.json").read_text()


def loads(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture(scope="module")
def ray_shards(pool, tmp_path_factory):
    """The pool written through Ray Data by 2 actors, and the log of the processes that loaded the model."""
    model, dataset, labeled = pool
    folder = tmp_path_factory.mktemp("ray")
    log = folder / "loads.txt"
    paths = distributed.write_pool_shards(Logged(model, log), dataset, labeled, NEEDS, folder / "shards",
                                          ROWS_PER_SHARD, executor="ray", actors=2)
    return paths, log


def test_ray_data_writes_the_local_shards_and_a_rerun_writes_only_the_missing_one(pool, local_shards, ray_shards):
    model, dataset, labeled = pool
    paths, log = ray_shards
    assert_same_shards(paths, local_shards)
    assert 1 <= len(loads(log)) <= 2  # six shards, the model unpickled once per actor (at most 2)

    stamps = {p: p.stat().st_mtime_ns for p in paths}
    shutil.rmtree(paths[3])  # as if an actor was killed while writing the fourth shard: only its temporary is left
    (paths[0].parent / ".shard-00003.x1y2z3").mkdir()
    (paths[0].parent / ".shard-00003.x1y2z3" / "probs.npy").write_bytes(b"half")
    del stamps[paths[3]]
    before = len(loads(log))
    out = paths[0].parent
    distributed.write_pool_shards(Logged(model, log), dataset, labeled, NEEDS, out, ROWS_PER_SHARD,
                                  executor="ray", actors=2)
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())  # the others were not rewritten
    pids = loads(log)  # an actor of the first run may still have been starting when it ended
    assert len(pids) <= before + 2 and len(set(pids)) == len(pids)  # one load per actor, never one per shard
    assert_same_shards(paths, local_shards)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left behind
    with pytest.raises(BmmalError, match="another plan"):
        distributed.write_pool_shards(model, dataset, labeled, NEEDS, out, 60, executor="ray")


@pytest.mark.parametrize("name", ["bmmal", "badge"])
def test_selection_from_ray_data_shards_equals_single_process_selection(pool, ray_shards, name):
    model, dataset, labeled = pool
    paths, _ = ray_shards
    whole = pool_outputs(model, dataset, labeled, NEEDS, batch_size=ROWS_PER_SHARD)  # the shards' batches
    for seed in (0, 1):
        np.testing.assert_array_equal(distributed.select(name, paths, 15, seed=seed, executor="local"),
                                      strategies.get(name).select(whole, 15, seed=seed))


def test_a_failing_model_call_names_its_shard_and_leaves_only_complete_shards(pool, local_shards, tmp_path):
    model, dataset, labeled = pool
    out = tmp_path / "ray"
    poisoned = Poisoned(model, tmp_path / "loads.txt", dataset.features["m0"][130], "raise")  # row 130: shard 2
    with pytest.raises(BmmalError, match=r"shard .*shard-00002: RuntimeError: the encoder failed on this batch; "
                                         r"\d+ of the 6 shards to write are not written") as error:
        distributed.write_pool_shards(poisoned, dataset, labeled, NEEDS, out, ROWS_PER_SHARD, executor="ray",
                                      actors=1)
    assert "\n" not in str(error.value)
    written = sorted(p for p in out.iterdir() if p.name.startswith("shard-"))
    assert out / "shard-00002" not in written and not [p for p in out.iterdir() if p.name.startswith(".")]
    assert_same_shards(written, [local_shards[int(p.name[-5:])] for p in written])  # complete, or absent


def test_an_actor_that_keeps_dying_is_a_clear_error(pool, tmp_path, monkeypatch):
    model, dataset, labeled = pool
    monkeypatch.setattr(ray_writer, "RESTARTS", 0)  # the restarts would end the same way, only later
    always = Poisoned(model, tmp_path / "loads.txt", dataset.features["m0"][260], "kill")  # row 260: shard 5
    out = tmp_path / "always"
    with pytest.raises(BmmalError, match=r"an actor died .* after 0 restarts; \d+ of the 6 shards to write are not "):
        distributed.write_pool_shards(always, dataset, labeled, NEEDS, out, ROWS_PER_SHARD, executor="ray",
                                      actors=1)
    assert not (out / "shard-00005").exists() and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_bad_executor_and_actor_counts_are_one_line_errors(pool, tmp_path):
    model, dataset, labeled = pool
    for kwargs, message in [({"executor": "ray-tasks"}, "executor must be local or ray, got 'ray-tasks'"),
                            ({"executor": "ray", "actors": 0}, "actors must be a positive integer or None, got 0"),
                            ({"executor": "ray", "actors": 1.5}, "actors must be a positive integer"),
                            ({"executor": "ray", "actors": True}, "actors must be a positive integer"),
                            ({"executor": "ray", "actor_options": 2}, "actor_options must be a dict")]:
        with pytest.raises(BmmalError, match=message):
            distributed.write_pool_shards(model, dataset, labeled, NEEDS, tmp_path, ROWS_PER_SHARD, **kwargs)
    assert not (tmp_path / "pool.json").exists()  # nothing written before the checks
