import numpy as np
import pytest

from bmmal.errors import BmmalError
from bmmal.pool import Pool


def test_label_and_rows():
    pool = Pool(np.array(["a", "b", "c", "d"]))
    assert pool.n_labeled == 0 and pool.unlabeled_rows.tolist() == [0, 1, 2, 3]
    pool.label([2, 0], [1, 0], round_index=0)
    pool.label(pool.rows(["d"]), [2], round_index=1)
    assert pool.labeled_rows.tolist() == [0, 2, 3]
    assert pool.unlabeled_rows.tolist() == [1]
    assert pool.labels.tolist() == [0, -1, 1, 2]
    assert pool.selected_in(1).tolist() == [3]


def test_state_round_trip():
    pool = Pool(np.array([f"id{i}" for i in range(10)]))
    pool.label([5, 1], [3, 4], 0)
    pool.label([7], [0], 1)
    state = pool.state_dict()
    assert state == {"ids": ["id1", "id5", "id7"], "labels": [4, 3, 0], "rounds": [0, 0, 1]}
    again = Pool.from_state_dict(pool.ids, state)
    assert np.array_equal(again.labels, pool.labels) and np.array_equal(again.rounds, pool.rounds)


@pytest.mark.parametrize("rows, labels, message", [
    ([0, 0], [1, 1], "twice"),
    ([1], [1, 2], "1 rows but 2 labels"),
    ([9], [1], "outside"),
    ([0], [-1], "non-negative"),
])
def test_bad_labels_change_nothing(rows, labels, message):
    pool = Pool(np.array(["a", "b", "c"]))
    with pytest.raises(BmmalError, match=message):
        pool.label(rows, labels, 0)
    assert pool.n_labeled == 0


def test_relabel_and_unknown_ids_are_refused():
    pool = Pool(np.array(["a", "b"]))
    pool.label([0], [1], 0)
    with pytest.raises(BmmalError, match="already labelled"):
        pool.label([1, 0], [1, 1], 1)
    assert pool.n_labeled == 1
    with pytest.raises(BmmalError, match="unknown sample id 'z'"):
        pool.rows(["z"])
    with pytest.raises(BmmalError, match="not unique"):
        Pool(np.array(["a", "a"]))
