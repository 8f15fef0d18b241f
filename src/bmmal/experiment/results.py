"""The tidy results table: one row per (dataset, setting, strategy, seed, round, metric).

Per-modality metrics keep the loop's "metric:modality" names (e.g. `unimodal_accuracy_micro:pix`);
timing metrics end in `_seconds` and are left out when results are compared for equality.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bmmal.errors import BmmalError

RESULTS_FILE = "results.csv"
KEYS = ["dataset", "setting", "strategy", "seed", "round", "n_labeled"]
COLUMNS = [*KEYS, "metric", "value"]


def tidy(wide: pd.DataFrame) -> pd.DataFrame:
    """Wide (one row per cell and round, one column per metric) -> tidy; missing metrics are dropped."""
    metrics = [c for c in wide.columns if c not in KEYS]
    long = wide.melt(id_vars=KEYS, value_vars=metrics, var_name="metric", value_name="value")
    long = long.dropna(subset=["value"])
    # grid order of the cells, then round, then the metrics in the loop's column order
    order = {m: i for i, m in enumerate(metrics)}
    long = long.assign(_cell=long.groupby(KEYS[:4], sort=False).ngroup(), _m=long["metric"].map(order))
    return long.sort_values(["_cell", "round", "_m"], kind="stable").drop(columns=["_cell", "_m"])[COLUMNS] \
        .reset_index(drop=True)


def wide(long: pd.DataFrame) -> pd.DataFrame:
    """Tidy -> one row per (dataset, setting, strategy, seed, round), one column per metric."""
    table = long.pivot_table(index=KEYS, columns="metric", values="value", aggfunc="first", sort=False)
    return table.reset_index().rename_axis(columns=None)


def read_results(path: str | Path) -> pd.DataFrame:
    """The tidy table from a benchmark directory or a results.csv file."""
    path = Path(path)
    path = path / RESULTS_FILE if path.is_dir() else path
    if not path.is_file():
        raise BmmalError(f"no results at {path}; run `bmmal benchmark` first")
    frame = pd.read_csv(path, dtype={"dataset": str, "setting": str, "strategy": str, "metric": str})
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise BmmalError(f"{path} is not a results table (missing columns: {', '.join(sorted(missing))})")
    return frame


def without_timings(long: pd.DataFrame) -> pd.DataFrame:
    """The table without timing rows, for comparing runs."""
    return long[~long["metric"].str.endswith("_seconds")].reset_index(drop=True)


def modalities(long: pd.DataFrame, prefix: str = "unimodal_accuracy_micro:") -> list[str]:
    """Modality names in first-seen order, read off the per-modality metric names."""
    names = long.loc[long["metric"].str.startswith(prefix), "metric"].str.removeprefix(prefix)
    return list(dict.fromkeys(names))
