"""What runs and benchmarks show while they work: plain lines off a terminal, a live bar on one, the label
schedule in words, the run header, and no progress bars from library code unless asked."""

import io
import re

import numpy as np
import pandas as pd
import yaml
from rich.console import Console

from bmmal.cli import main
from bmmal.features.base import encode_batches
from bmmal.progress import Steps, duration, schedule_in_words, shown

LINE = re.compile(r"^\d\d:\d\d:\d\d  cells (\d)/3  cell (\d)  acc 0\.\d{4}(  ETA \d+s)?$")


def test_schedule_in_words():
    assert schedule_in_words(20, 20, 7) == "20 initial + 7 rounds of 20 = 160 labels, 8 evaluations"
    assert schedule_in_words(10, 5, 1) == "10 initial + 1 round of 5 = 15 labels, 2 evaluations"
    assert schedule_in_words(50, 10, 0) == "50 initial labels, 1 evaluation"
    assert [duration(s) for s in (4.6, 245, 7380)] == ["5s", "4m05s", "2h03m"]


def test_one_plain_line_per_step_when_not_a_terminal():
    out = io.StringIO()
    with Steps(Console(file=out, width=200), "cells", 3) as steps:
        for i in range(3):
            steps.step(f"cell {i}", 0.5 + i / 10)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(LINE.match(line) for line in lines), lines
    assert "ETA" in lines[0] and "ETA" not in lines[-1]  # nothing left after the last one


def test_live_bar_on_a_terminal_prints_no_lines():
    out = io.StringIO()
    with Steps(Console(file=out, force_terminal=True, width=120), "cells", 3) as steps:
        for i in range(3):
            steps.step(f"cell {i}", 0.5)
    assert not any(LINE.match(line) for line in out.getvalue().splitlines())
    assert "\x1b[" in out.getvalue()  # drawn with terminal control codes


def test_library_code_draws_no_bar_unless_asked(capsys):
    def encode(batch):
        return np.ones((len(batch), 2))

    assert encode_batches(encode, list(range(5)), 2, 2, "quiet").shape == (5, 2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    out = io.StringIO()
    with shown(Console(file=out, force_terminal=True, width=120)):
        encode_batches(encode, list(range(5)), 2, 2, "asked")
    assert "asked" in out.getvalue()


SMALL_RUN = {"dataset": {"name": "synthetic", "options": {"n_samples": 120, "n_classes": 3, "dims": 4}},
             "strategy": "random", "initial_budget": 9, "budget": 6, "rounds": 2,
             "model": {"hidden_dims": [8], "embed_dim": 4}, "train": {"epochs": 2}}


def test_run_prints_header_schedule_and_a_line_per_round(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(SMALL_RUN))
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "modalities m0 (4), m1 (4)" in out
    assert "label schedule: 9 initial + 2 rounds of 6 = 21 labels, 3 evaluations" in out
    rounds = [line for line in out.splitlines() if re.match(r"^\d\d:\d\d:\d\d  rounds \d/3  round", line)]
    assert [line.split("  ")[2] for line in rounds] == ["round 0, 9 labels", "round 1, 15 labels",
                                                         "round 2, 21 labels"]
    assert "probe" not in out  # no probe columns unless the run sets probes


def _printed_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each rich table in `text` as its header (lines of a header cell joined by a space) and its rows."""
    tables, header, rows = [], None, []
    for line in text.splitlines():
        line = line.strip()
        if line[:1] not in ("┃", "│"):
            continue
        cells = [cell.strip() for cell in line[1:-1].split(line[0])]
        if line[0] == "┃":
            if rows or header is None:
                header, rows = [""] * len(cells), []
                tables.append((header, rows))
            header[:] = [f"{h} {c}".strip() for h, c in zip(header, cells, strict=True)]
        else:
            rows.append(cells)
    return tables


def _run_with_probes(tmp_path, monkeypatch, width: int, modalities: int = 2):
    """The console output of a small run with probes on `modalities` modalities, not a terminal, and its
    metrics.csv."""
    from bmmal import cli

    names = ["pix", "fac", "kar", "mor", "zer", "fou"][:modalities]
    dataset = {**SMALL_RUN["dataset"], "options": {**SMALL_RUN["dataset"]["options"], "names": names,
                                                   "informativeness": [3.0] + [1.0] * (modalities - 1)}}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**SMALL_RUN, "dataset": dataset, "probes": True}))
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=width))
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    return out.getvalue(), pd.read_csv(tmp_path / "run" / "metrics.csv"), names


def test_run_table_has_a_probe_column_per_modality_when_probes_are_on(tmp_path, monkeypatch):
    from bmmal import cli

    text, metrics, names = _run_with_probes(tmp_path, monkeypatch, width=200)
    [(header, rows)] = _printed_tables(text)
    assert header == ["round", "labels", "acc. micro", "acc. macro", *(f"probe {m}" for m in names), "query s",
                      "train s"]
    for m in names:
        assert [row[header.index(f"probe {m}")] for row in rows] == \
            [f"{v:.4f}" for v in metrics[f"probe_accuracy_micro:{m}"]]
    assert cli._probe_cell(float("nan")) == cli._probe_cell(None) == "-"  # one labeled class; not measured


def test_run_table_never_cuts_numbers_at_80_columns_in_a_pipe(tmp_path, monkeypatch):
    text, metrics, names = _run_with_probes(tmp_path, monkeypatch, width=80, modalities=6)
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    shown = {}  # header -> the column's cells, over all the tables printed
    for header, rows in _printed_tables(text):
        assert [row[header.index("round")] for row in rows] == [str(r) for r in metrics["round"]]
        shown |= {h: [row[i] for row in rows] for i, h in enumerate(header)}
    wanted = {"acc. micro": "accuracy_micro", "acc. macro": "accuracy_macro",
              **{f"probe {m}": f"probe_accuracy_micro:{m}" for m in names}}
    assert {h: shown.get(h) for h in wanted} == {h: [f"{v:.4f}" for v in metrics[c]] for h, c in wanted.items()}


def test_strategies_list_reads_at_80_columns_and_is_one_line_each_in_a_pipe(monkeypatch):
    from bmmal import cli, strategies

    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=80, force_terminal=True, color_system=None))
    assert main(["strategies"]) == 0
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    starts = [line.split()[0] for line in lines[1:] if line and not line.startswith(" ")]
    assert starts == strategies.available()  # wrapped text continues indented, under its own column
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=80))  # not a terminal
    assert main(["strategies"]) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == strategies.available()
    assert all("(needs: " in line for line in lines)
