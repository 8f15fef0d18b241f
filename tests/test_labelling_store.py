"""The SQLite labelling store: leases, answers, skips, undo, and atomic claims under concurrency."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from bmmal.errors import BmmalError
from bmmal.labelling.store import Conflict, LabelStore


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    s = LabelStore(tmp_path / "labels.db", clock=clock)
    s.add_batch("random", [f"s{i}" for i in range(6)])
    return s


def test_claims_are_leased_and_kept(store, clock):
    assert store.claim("a", ttl=60) == "s0"
    assert store.claim("a", ttl=60) == "s0"  # the same session keeps its sample
    assert store.claim("b", ttl=60) == "s1"  # another session gets another one
    clock.now += 61  # a's lease ran out: its sample goes to the next session that asks
    assert store.claim("c", ttl=60) == "s0"
    with pytest.raises(Conflict, match="someone else"):
        store.answer("a", "s0", "x")


def test_answer_skip_and_undo(store):
    store.claim("a", 60)
    store.answer("a", "s0", "cat", labeller="Ann")
    store.answer("a", "s0", "cat")  # the same answer again (a double click) is a no-op
    with pytest.raises(Conflict, match="already labelled 'cat'"):
        store.answer("b", "s0", "dog")
    assert store.labels() == {"s0": "cat"}
    assert store.claim("a", 60) == "s1"
    store.skip("a", "s1")
    assert store.claim("a", 60) == "s2"  # skipped samples are not shown to this session again ...
    assert store.claim("b", 60) == "s1"  # ... but stay pending for others
    assert store.progress() == {"done": 1, "total": 6, "pending": 5, "labeled": 1, "set_aside": 0, "second_wanted": 0}

    with pytest.raises(Conflict, match="someone else"):  # a's last action skipped s1, which b holds now
        store.undo("a", 60)


def test_undo_returns_the_sample_to_the_session(store):
    store.claim("a", 60)
    store.answer("a", "s0", "cat")
    store.claim("a", 60)
    store.skip("a", "s1")
    assert store.undo("a", 60) == "s1"  # last action first: the skip
    assert store.claim("a", 60) == "s1"
    assert store.undo("a", 60) == "s0"  # then the answer: the label is gone, the sample pending again
    assert store.labels() == {} and "s0" in store.pending()
    assert store.claim("a", 60) == "s0"
    assert store.undo("a", 60) is None  # nothing left to undo
    assert store.claim("b", 60) == "s1"  # s0 is a's again


def test_undo_refuses_a_label_replaced_since(store):
    store.claim("a", 60)
    store.answer("a", "s0", "cat")
    store.set_labels([("s0", "dog")], source="import:x")
    with pytest.raises(Conflict, match="changed since"):
        store.undo("a", 60)
    assert store.labels() == {"s0": "dog"}


def test_actions_on_samples_outside_a_batch_are_refused(store):
    with pytest.raises(Conflict, match="not in a queried batch"):
        store.answer("a", "zzz", "cat")
    with pytest.raises(BmmalError, match="already labelled or pending"):
        store.add_batch("random", ["s3", "t1"])
    assert len(store.batches()) == 1  # nothing half-added


def test_concurrent_threads_claim_disjoint_samples(tmp_path):
    store = LabelStore(tmp_path / "labels.db")
    store.add_batch("random", [f"s{i}" for i in range(40)])
    n = 12
    barrier = threading.Barrier(n)
    got = [None] * n

    def work(k):
        barrier.wait()
        got[k] = store.claim(f"session-{k}", 60)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert None not in got and len(set(got)) == n


def _claim_and_answer(path, session, out):
    store = LabelStore(path)
    mine = []
    while (sample := store.claim(session, 60)) is not None:
        store.answer(session, sample, "cat", labeller=session)
        mine.append(sample)
    out.put((session, mine))


def test_concurrent_processes_label_disjoint_samples(tmp_path):
    path = tmp_path / "labels.db"
    LabelStore(path).add_batch("random", [f"s{i}" for i in range(30)])
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_and_answer, args=(path, f"p{k}", out)) for k in range(3)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    answered = [s for mine in results.values() for s in mine]
    assert sorted(answered) == sorted(f"s{i}" for i in range(30))  # every sample once, no one twice
    with LabelStore(path).reading() as db:
        rows = dict(db.execute("SELECT sample_id, labeller FROM labels"))
    assert all(rows[s] == session for session, mine in results.items() for s in mine)


def test_a_store_from_before_set_aside_and_double_labelling_is_upgraded(tmp_path):
    import sqlite3

    path = tmp_path / "labels.db"
    with sqlite3.connect(path) as db:  # the tables as the first version of the store wrote them
        db.executescript(
            "CREATE TABLE labels (sample_id TEXT PRIMARY KEY, label TEXT NOT NULL, source TEXT NOT NULL, "
            "labeller TEXT, time REAL NOT NULL);"
            "CREATE TABLE batches (id INTEGER PRIMARY KEY, strategy TEXT NOT NULL, created REAL NOT NULL, "
            "n_labeled INTEGER NOT NULL, info TEXT NOT NULL DEFAULT '{}');"
            "CREATE TABLE batch_items (sample_id TEXT PRIMARY KEY, batch INTEGER NOT NULL, position INTEGER NOT NULL, "
            "prediction TEXT);"
            "INSERT INTO batches VALUES (1, 'random', 0, 0, '{}'); INSERT INTO batch_items VALUES ('a', 1, 0, NULL);")
    store = LabelStore(path, read_only=True)  # `bmmal status` on an old project works
    assert store.pending() == ["a"] and store.set_aside_items() == {} and store.progress()["second_wanted"] == 0
    writable = LabelStore(path)
    assert writable.claim("s", 60) == "a"
