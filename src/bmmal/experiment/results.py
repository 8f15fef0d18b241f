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
    try:
        frame = pd.read_csv(path, dtype={"dataset": str, "setting": str, "strategy": str, "metric": str},
                            encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise BmmalError(f"{path} is empty (no header, no results)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        reason = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else " ".join(str(e).split())
        raise BmmalError(f"{path} is not a results table ({reason})") from None
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise BmmalError(f"{path} is not a results table (missing columns: {', '.join(sorted(missing))})")
    if frame.empty:
        raise BmmalError(f"{path} holds no results (only a header); run `bmmal benchmark` first")
    for column in ("seed", "round", "n_labeled", "value"):
        if not pd.api.types.is_numeric_dtype(frame[column]) or (column != "value" and frame[column].isna().any()):
            raise BmmalError(f"{path} is damaged: column {column!r} holds values that are not numbers")
    if not (frame["metric"] == "accuracy_micro").any():
        raise BmmalError(f"{path} holds no accuracy_micro rows; it was not written by `bmmal benchmark`")
    return frame


def without_timings(long: pd.DataFrame) -> pd.DataFrame:
    """The table without timing rows, for comparing runs."""
    return long[~long["metric"].str.endswith("_seconds")].reset_index(drop=True)


def modalities(long: pd.DataFrame, prefix: str = "unimodal_accuracy_micro:") -> list[str]:
    """Modality names in first-seen order, read off the per-modality metric names."""
    names = long.loc[long["metric"].str.startswith(prefix), "metric"].str.removeprefix(prefix)
    return list(dict.fromkeys(names))
