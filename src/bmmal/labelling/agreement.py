"""Agreement between two labellers on the samples both answered (double labelling): share of equal
answers and Cohen's kappa (scikit-learn's `cohen_kappa_score`), which discounts the agreement expected
by chance from each labeller's class frequencies."""

from __future__ import annotations

import math
import warnings


def agreement(pairs: list[tuple[str, str]]) -> dict:
    """{"n", "agree" (share of equal pairs), "kappa" (None while undefined: no pairs, or one class only)}."""
    if not pairs:
        return {"n": 0, "agree": None, "kappa": None}
    from sklearn.metrics import cohen_kappa_score

    first, second = zip(*pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one class only: 0/0, reported as undefined
        kappa = float(cohen_kappa_score(first, second))
    return {"n": len(pairs), "agree": sum(a == b for a, b in pairs) / len(pairs),
            "kappa": None if math.isnan(kappa) else kappa}
