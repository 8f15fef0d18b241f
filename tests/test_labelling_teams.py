"""Teams: named labellers with a token each, per-labeller counts, double labelling and Cohen's kappa in status."""

from __future__ import annotations

import re

import pytest
from sklearn.metrics import cohen_kappa_score

from bmmal.cli import main
from bmmal.labelling.agreement import agreement
from bmmal.labelling.query import query
from bmmal.labelling.server import LabelServer
from bmmal.labelling.store import Conflict, LabelStore
from test_labelling_helpers import CLASSES, call, feature_cache, new_project, true_label  # noqa: F401


def test_second_answers_come_from_another_named_labeller(tmp_path):
    store = LabelStore(tmp_path / "labels.db")
    store.add_batch("random", ["s0", "s1", "s2"])
    assert store.mark_double(1.0, "salt") == 3
    assert store.claim("a1", 60, "ann") == "s0"
    store.answer("a1", "s0", "cat", "ann")
    assert store.claim("a1", 60, "ann") == "s1"  # ann is not offered s0 again ...
    assert store.claim("b1", 60, "bob") == "s0"  # ... bob is, for its second answer
    assert store.claim("x1", 60, None) == "s2"  # an unnamed session never gets a second answer to give
    store.answer("b1", "s0", "dog", "bob")
    assert store.labels() == {"s0": "cat"}  # the first answer is the label
    assert store.double_labeled() == [("s0", "cat", "dog")]
    with pytest.raises(Conflict, match="already labelled"):
        store.answer("c1", "s0", "cat", "cid")  # two answers are enough
    assert store.undo("b1", 60) == "s0"  # bob takes his answer back: s0 wants a second answer again
    assert store.double_labeled() == [] and store.progress()["second_wanted"] == 1
    store.answer("b1", "s0", "cat", "bob")
    assert store.labeller_counts() == {"ann": {"answers": 1, "second": 0}, "bob": {"answers": 0, "second": 1}}
    assert store.mark_double(0.0, "salt") == 2  # marks stay; the labelled s0 is no longer pending


def test_agreement_is_scikit_learns_kappa():
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("c", "c"), ("b", "b"), ("c", "a")]
    result = agreement(pairs)
    assert result["n"] == 6 and result["agree"] == pytest.approx(4 / 6)
    assert result["kappa"] == pytest.approx(cohen_kappa_score(*zip(*pairs)))
    assert agreement([("a", "a"), ("a", "a")])["kappa"] is None  # one class only: undefined
    assert agreement([]) == {"n": 0, "agree": None, "kappa": None}


@pytest.mark.usefixtures("feature_cache")
def test_team_with_tokens_double_labels_and_status_shows_kappa(tmp_path, capsys):
    project = new_project(tmp_path, n=30)
    batch = query(project, 8, "random")
    marked = project.store.mark_double(0.5, "team")
    assert 0 < marked < 8
    server = LabelServer(project, "127.0.0.1", 0, labellers=("ann", "bob")).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        tokens = {name: token for token, name in server.access.tokens.items()}
        assert set(tokens) == {"ann", "bob"} and server.url("bob").endswith(f"?token={tokens['bob']}")
        assert call(base, "/api/project")[0] == 401  # named labellers: tokens even on loopback

        def work(name, wrong_every):
            auth = {"Authorization": f"Bearer {tokens[name]}"}
            status, info = call(base, "/api/project", headers=auth)
            assert status == 200 and info["labeller"] == name
            _, reply = call(base, "/api/next", {"session": name, "labeller": "someone else"}, headers=auth)
            answers = 0
            while reply["sample"] is not None:
                sample = reply["sample"]["id"]
                label = true_label(sample)
                if wrong_every and answers % wrong_every == 0:
                    label = CLASSES[(CLASSES.index(label) + 1) % 3]
                status, reply = call(base, "/api/answer", {"session": name, "labeller": "someone else", "id": sample,
                                                           "label": label}, headers=auth)
                assert status == 200, reply
                answers += 1
            return answers

        assert work("ann", 0) == 8  # ann answers the whole batch first
        bob = work("bob", 2)  # then bob gives the second answers, a few of them different
    finally:
        server.shutdown()
    pairs = project.store.double_labeled()
    assert bob == len(pairs) == marked and project.store.progress()["second_wanted"] == 0
    assert {s for s, _, _ in pairs} <= set(batch.sample_ids)
    assert project.store.labeller_counts() == {"ann": {"answers": 8, "second": 0}, "bob": {"answers": 0,
                                                                                          "second": bob}}
    kappa = cohen_kappa_score([f for _, f, _ in pairs], [s for _, _, s in pairs])
    assert main(["status", str(project.dir)]) == 0
    out = " ".join(re.sub("[│┃]", " ", capsys.readouterr().out).split())
    assert "labellers" in out and "ann 8 0" in out and f"bob 0 {bob}" in out
    assert f"double labelling: {len(pairs)} samples answered twice, 0 awaiting a second answer" in out
    assert f"Cohen's kappa {kappa:.3f}" in out or "Cohen's kappa undefined" in out
