"""Selection across shards on one local Ray (2 CPUs, started once for this module) equals single-process
selection on the concatenated pool."""

import itertools
import shutil

import numpy as np
import pytest
import torch

from bmmal import strategies
from bmmal.errors import BmmalError
from bmmal.outputs import PoolOutputs

ray = pytest.importorskip("ray")
from bmmal import distributed
from bmmal.distributed import selection as distributed_selection
from test_labelling_helpers import EXTRACTORS, feature_cache, write_manifest  # noqa: F401
from tests.test_kmeanspp import pool_outputs as kmeanspp_pool

SPLIT = (0, 17, 23, 90)  # unequal shards; rows 17..22 are all labelled


def pool(n=90, labeled=True):
    """Float64 pool outputs (two modalities, Shapley values through a linear head) with labelled rows spread
    over the shards and one shard (rows 17..22) labelled throughout."""
    outputs = kmeanspp_pool(n=n, dims=(5, 4), n_classes=4, n_labeled=0)
    if labeled:
        outputs.labeled[[1, 30, 31, 70, 89]] = True
        outputs.labeled[SPLIT[1]:SPLIT[2]] = True
    return outputs


def shards_of(outputs, split=SPLIT):
    return [PoolOutputs(labeled=outputs.labeled[a:b], probs=outputs.probs[a:b],
                        embeddings={m: z[a:b] for m, z in outputs.embeddings.items()},
                        shapley=outputs.shapley[a:b]) for a, b in itertools.pairwise(split)]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def sharded(local_ray, tmp_path_factory):
    """The pool in three stored shards (.npz and folders of .npy), one Ray actor each."""
    outputs, folder = pool(), tmp_path_factory.mktemp("shards")
    paths = [distributed.save_shard(shard, folder / (f"s{i}.npz" if i % 2 else f"s{i}"))
             for i, shard in enumerate(shards_of(outputs))]
    with distributed.ShardedPool(paths) as pooled:
        yield outputs, pooled


@pytest.mark.parametrize("name", ["badge", "bmmal", "coreset", "random"])
def test_sharded_selection_equals_single_process(sharded, name):
    outputs, pooled = sharded
    assert len(pooled) == len(outputs) and np.array_equal(pooled.labeled, outputs.labeled.numpy())
    for seed in (0, 1, 2):
        expected = strategies.get(name).select(outputs, 12, seed=seed)
        np.testing.assert_array_equal(pooled.select(name, 12, seed=seed), expected)


def test_sharded_reduced_precision_and_whole_pool_budget(sharded):
    outputs, pooled = sharded
    np.testing.assert_array_equal(pooled.select("bmmal", 10, seed=5, precision="bf16"),
                                  strategies.get("bmmal", precision="bf16").select(outputs, 10, seed=5))
    every = len(outputs.unlabeled_rows)
    np.testing.assert_array_equal(pooled.select("badge", every, seed=0),
                                  strategies.get("badge").select(outputs, every, seed=0))


@pytest.mark.parametrize("name", ["badge", "bmmal", "coreset", "random"])
def test_in_process_shards_equal_single_process_with_nothing_labeled(name):
    outputs = pool(labeled=False)
    shards = shards_of(outputs, (0, 38, 41, 90))
    for seed in (0, 1):
        np.testing.assert_array_equal(distributed.select(name, shards, 9, seed=seed, executor="local"),
                                      strategies.get(name).select(outputs, 9, seed=seed))


@pytest.mark.parametrize("name", ["badge", "bmmal", "coreset", "random"])
def test_in_process_shards_equal_single_process_with_labeled_rows(name):
    outputs = pool()
    shards = shards_of(outputs, (0, 38, 41, 90))
    np.testing.assert_array_equal(distributed.select(name, shards, 9, seed=2, executor="local"),
                                  strategies.get(name).select(outputs, 9, seed=2))


def test_stored_shards_read_back(tmp_path):
    outputs = pool()
    for name in ("a.npz", "b"):
        loaded = distributed.load_shard(distributed.save_shard(outputs, tmp_path / name))
        assert list(loaded.embeddings) == ["m0", "m1"] and torch.equal(loaded.embeddings["m1"], outputs.embeddings["m1"])
        assert torch.equal(loaded.labeled, outputs.labeled) and torch.equal(loaded.shapley, outputs.shapley)
    with pytest.raises(BmmalError, match="does not exist"):
        distributed.load_shard(tmp_path / "missing")


def test_bad_requests_are_one_line_errors(sharded):
    _, pooled = sharded
    with pytest.raises(BmmalError, match="cannot be selected across shards"):
        pooled.select("entropy", 3)
    with pytest.raises(BmmalError, match="larger than"):
        pooled.select("badge", 1000)
    with pytest.raises(BmmalError, match="precision"):
        pooled.select("badge", 3, precision="int8")


def test_killed_worker_is_a_clear_error_not_a_selection(local_ray, monkeypatch):
    calls = []
    each = distributed_selection.RayParts.each

    def each_then_kill(self, method, *args):  # a worker dies after the third pick
        calls.append(method)
        if method == "add_centre" and calls.count("add_centre") == 3:
            ray.kill(self.actors[1])
        return each(self, method, *args)

    with distributed.ShardedPool(shards_of(pool(), (0, 50, 90))) as pooled:
        with monkeypatch.context() as patch:
            patch.setattr(distributed_selection.RayParts, "each", each_then_kill)
            with pytest.raises(BmmalError, match="worker holding shard #1 died during selection"):
                pooled.select("bmmal", 8)
        with pytest.raises(BmmalError, match="died during selection"):  # and so does every later selection
            pooled.select("coreset", 3)


def test_sharded_strategy_selects_what_the_strategy_selects(sharded):
    outputs, _ = sharded
    wrapped = distributed.ShardedStrategy(strategies.get("bmmal", precision="bf16"), shards=1)  # one actor: cheap
    assert wrapped.needs == strategies.get("bmmal").needs
    np.testing.assert_array_equal(wrapped.select(outputs, 7, seed=4),
                                  strategies.get("bmmal", precision="bf16").select(outputs, 7, seed=4))
    with pytest.raises(BmmalError, match="cannot be selected across shards"):
        distributed.ShardedStrategy(strategies.get("kmeans"))


def test_cli_query_with_the_ray_executor_selects_what_local_selects(sharded, tmp_path, capsys, feature_cache):
    from bmmal.cli import main
    from bmmal.labelling.project import Project

    manifest = write_manifest(tmp_path / "data", n=45, seeds_per_class=0)
    extractors = [arg for m, name in EXTRACTORS.items() for arg in ("--extractor", f"{m}={name}")]
    pending = {}
    for executor in ("local", "ray"):
        project_dir = tmp_path / executor
        assert main(["init", str(project_dir), "--manifest", str(manifest), "--classes", "red,green,blue",
                     *extractors]) == 0
        assert main(["query", str(project_dir), "--budget", "9", "--strategy", "coreset",
                     "--executor", executor]) == 0
        pending[executor] = Project(project_dir).store.pending()
    capsys.readouterr()
    assert len(pending["ray"]) == 9 and pending["ray"] == pending["local"]
    assert main(["query", str(tmp_path / "ray"), "--budget", "3", "--strategy", "kmeans", "--executor", "ray"]) == 2
    assert "cannot be selected across shards" in capsys.readouterr().err


def test_pool_inference_written_as_shards_resumes_per_shard(tmp_path):
    from bmmal.data import ArrayDataset
    from bmmal.inference import pool_outputs
    from bmmal.models import MultimodalClassifier
    from bmmal.models.encoders import MLPEncoder

    g = np.random.default_rng(0)
    dataset = ArrayDataset({"a": g.normal(size=(20, 6)), "b": g.normal(size=(20, 4))}, np.zeros(20, dtype=np.int64),
                           ("x", "y", "z"))
    torch.manual_seed(0)
    model = MultimodalClassifier({"a": MLPEncoder((6,), embed_dim=5), "b": MLPEncoder((4,), embed_dim=3)}, 3).eval()
    labeled = np.arange(20) % 4 == 0
    paths = distributed.write_pool_shards(model, dataset, labeled, ("embeddings", "shapley"), tmp_path, 7)
    assert [p.name for p in paths] == ["shard-00000", "shard-00001", "shard-00002"]
    whole = pool_outputs(model, dataset, labeled, ("embeddings", "shapley"))
    shards = [distributed.load_shard(p) for p in paths]
    torch.testing.assert_close(torch.cat([s.embeddings["b"] for s in shards]), whole.embeddings["b"])
    torch.testing.assert_close(torch.cat([s.shapley for s in shards]), whole.shapley)
    assert torch.equal(torch.cat([s.labeled for s in shards]), whole.labeled)

    stamps = {p: p.stat().st_mtime_ns for p in paths}
    shutil.rmtree(paths[1])  # as if interrupted before the second shard
    distributed.write_pool_shards(model, dataset, labeled, ("embeddings", "shapley"), tmp_path, 7)
    assert paths[1].exists() and all(p.stat().st_mtime_ns == stamps[p] for p in (paths[0], paths[2]))
    with pytest.raises(BmmalError, match="another plan"):
        distributed.write_pool_shards(model, dataset, labeled, ("embeddings", "shapley"), tmp_path, 5)
    with pytest.raises(BmmalError, match="cannot store mc_probs"):
        distributed.write_pool_shards(model, dataset, labeled, ("mc_probs",), tmp_path / "other", 5)
