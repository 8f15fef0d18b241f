"""Summaries of benchmark results: learning-curve areas, paired tests over seeds, modality balance.

The frame functions take the wide table of one (dataset, setting): one row per (strategy, seed, round)
with n_labeled and one column per metric (see `results.wide`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.integrate import trapezoid
from scipy.special import xlogy


def aulc(x, y) -> float:
    """Area under the learning curve y(x): the trapezoid rule over the number of labels x, divided by the
    range of x, so it is the mean accuracy over the labelling range (docs/reports.md). bmmal's only AULC.

    A single point is its own value.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if len(x) == 1:
        return float(y[0])
    if x[-1] == x[0]:
        raise ValueError("aulc: x must span a range")
    return float(trapezoid(y, x) / (x[-1] - x[0]))


def normalised_entropy(shares) -> np.ndarray | float:
    """H(c) / log M of shares c over M modalities along the last axis (renormalised to sum to 1).

    1 means every modality contributes equally, 0 that one modality does everything; NaN for M = 1.
    """
    c = np.asarray(shares, dtype=float)
    m = c.shape[-1]
    if m < 2:
        return np.full(c.shape[:-1], np.nan) if c.ndim > 1 else float("nan")
    p = c / c.sum(axis=-1, keepdims=True)
    h = -xlogy(p, p).sum(axis=-1) / np.log(m)
    return h if c.ndim > 1 else float(h)


@dataclass(frozen=True)
class Paired:
    """A strategy against a baseline over the same seeds: d = strategy - baseline, per seed."""

    n: int
    mean_diff: float
    wins: int
    ties: int
    losses: int
    p_value: float  # two-sided Wilcoxon signed-rank; NaN below 2 seeds, 1 when all differences are 0


def wilcoxon_p(d) -> float:
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return float("nan")
    if np.allclose(d, 0.0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def paired(values, baseline, tol: float = 1e-12) -> Paired:
    """Compare per-seed values of a strategy with a baseline's (same seed order)."""
    d = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    if d.size == 0:
        return Paired(0, float("nan"), 0, 0, 0, float("nan"))
    tie = np.abs(d) <= tol
    return Paired(len(d), float(d.mean()), int((d > tol).sum()), int(tie.sum()), int((d < -tol).sum()),
                  wilcoxon_p(np.where(tie, 0.0, d)))


# ---- frame summaries ------------------------------------------------------------------------------
def round_stats(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std over seeds of `metric`, per strategy and round: columns strategy, round, n_labeled,
    mean, std, n (std is 0 for a single seed)."""
    grouped = frame.groupby(["strategy", "round", "n_labeled"], sort=False)[metric]
    out = grouped.agg(["mean", "std", "count"]).rename(columns={"count": "n"}).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def aulc_per_seed(frame: pd.DataFrame, metric: str, by: Sequence[str] = ("strategy", "seed")) -> pd.DataFrame:
    """`aulc` of `metric` over n_labeled for every group of `by` (one curve each): columns *by, aulc."""
    rows = [{**dict(zip(by, key)), "aulc": aulc(part["n_labeled"], part[metric])}
            for key, part in frame.groupby(list(by), sort=False)]
    return pd.DataFrame(rows, columns=[*by, "aulc"])


def final_per_seed(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """`metric` at each (strategy, seed)'s last round: columns strategy, seed, value."""
    last = frame.loc[frame.groupby(["strategy", "seed"], sort=False)["round"].idxmax()]
    return last[["strategy", "seed", metric]].rename(columns={metric: "value"}).reset_index(drop=True)


def paired_against(per_seed: pd.DataFrame, baseline: str, value: str = "aulc") -> dict[str, Paired]:
    """Every other strategy against `baseline` on the seeds both have."""
    table = per_seed.pivot(index="seed", columns="strategy", values=value)
    if baseline not in table:
        return {}
    return {s: paired(table[[s, baseline]].dropna()[s], table[[s, baseline]].dropna()[baseline])
            for s in table.columns if s != baseline}


def balance_per_round(frame: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
    """Per strategy and round, means over seeds of: each modality's unimodal accuracy, the strongest-minus-
    weakest gap, each modality's mean Shapley contribution share on the test split, the normalised
    entropy of those shares (gap and entropy are computed per seed, then averaged), and each modality's
    linear-probe accuracy where the runs measured it."""
    acc = [f"unimodal_accuracy_micro:{m}" for m in modalities]
    share = [f"contribution:{m}" for m in modalities]
    probes = [c for c in (f"probe_accuracy_micro:{m}" for m in modalities) if c in frame]  # when measured
    per_seed = frame[["strategy", "round", "n_labeled", *acc, *share, *probes]].copy()
    per_seed["modality_gap"] = per_seed[acc].max(axis=1) - per_seed[acc].min(axis=1)
    per_seed["contribution_entropy"] = normalised_entropy(per_seed[share].to_numpy())
    return per_seed.groupby(["strategy", "round", "n_labeled"], sort=False).mean().reset_index()


def selection_per_round(frame: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
    """Per strategy and round >= 1, means over seeds of the selected batch's dominant-modality shares, the
    same shares in the unlabelled pool, and the mean contribution gap of the selected samples and the pool.
    Empty when the runs recorded no selection statistics."""
    columns = [*(f"selected_dominant_share:{m}" for m in modalities),
               *(f"pool_dominant_share:{m}" for m in modalities),
               "selected_contribution_gap", "pool_contribution_gap"]
    if not set(columns) <= set(frame.columns):
        return pd.DataFrame(columns=["strategy", "round", "n_labeled", *columns])
    rows = frame[frame["round"] >= 1].dropna(subset=columns)
    return rows.groupby(["strategy", "round", "n_labeled"], sort=False)[columns].mean().reset_index()


def composition(frame: pd.DataFrame, modalities: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per strategy, the mean over rounds >= 1 and seeds of the selected batches' dominant-modality shares and
    of the same shares in the unlabelled pool: two frames, index strategy, columns modalities."""
    stats = selection_per_round(frame, modalities)
    means = stats.groupby("strategy", sort=False).mean(numeric_only=True)
    selected = means[[f"selected_dominant_share:{m}" for m in modalities]].set_axis(modalities, axis=1)
    pool = means[[f"pool_dominant_share:{m}" for m in modalities]].set_axis(modalities, axis=1)
    return selected, pool
