"""Importing labels made elsewhere (a Label Studio JSON export or a CSV of id,label): validate all, apply all.

Every answer in the file is checked before anything is written: unknown sample ids, unknown classes,
one id given two different labels (in the file, or against a label the project already has), and
malformed rows. Any problem rejects the whole file with the list of reasons; otherwise all labels are
written in one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from bmmal.errors import BmmalError
from bmmal.labelling import labelstudio

MAX_LISTED = 50


@dataclass(frozen=True)
class Answer:
    """One label for one sample, and where in the file it was found (for messages)."""

    sample_id: str
    label: str
    where: str


@dataclass
class ImportReport:
    path: Path
    applied: int = 0  # labels written (new or, with overwrite, replaced)
    unchanged: int = 0  # answers equal to a label the project already had
    unanswered: int = 0  # entries with no label (e.g. a Label Studio task nobody annotated)
    problems: list[str] = field(default_factory=list)


class ImportRejected(BmmalError):
    """The file has problems; nothing was applied. `problems` lists them."""

    def __init__(self, report: ImportReport):
        self.report = report
        n = len(report.problems)
        super().__init__(f"{report.path}: {n} problem{'s' * (n != 1)}, nothing imported")

    def lines(self) -> list[str]:
        problems = self.report.problems
        listed = problems[:MAX_LISTED]
        more = [f"... and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else []
        return listed + more


def read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, problem): UTF-8 with or without a BOM, or UTF-16 with its BOM; anything else is a problem that
    names where decoding failed (a latin-1 file, say), for the import's report."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        return None, (f"line {line}: the file is not {encoding.replace('-sig', '')} text (byte {raw[e.start]:#04x}); "
                      "save it as UTF-8")


def read_csv(path: Path) -> tuple[list[Answer], int, list[str]]:
    """(answers, rows without a label, problems) from a CSV with a header that names `id` and `label`."""
    text, problem = read_text(path)
    if problem:
        return [], 0, [problem]
    problems: list[str] = []
    answers: list[Answer] = []
    unanswered = 0
    rows = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(rows, [])]
    if "id" not in header or "label" not in header:
        raise BmmalError(f"{path}: the CSV header must name the columns 'id' and 'label' (found: "
                         f"{', '.join(header) or 'nothing'})")
    try:
        for row in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(f"line {line}: {len(row)} cells, the header has {len(header)}")
                continue
            cells = dict(zip(header, row))
            sample_id, label = cells["id"].strip(), cells["label"].strip()
            if not sample_id:
                problems.append(f"line {line}: empty id")
            elif not label:
                unanswered += 1
            else:
                answers.append(Answer(sample_id, label, f"line {line}"))
    except csv.Error as e:
        problems.append(f"line {rows.line_num}: not valid CSV ({e})")
    return answers, unanswered, problems


def read_answers(path: Path) -> tuple[list[Answer], int, list[str]]:
    if not path.is_file():
        raise BmmalError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path)
    if suffix == ".json":
        return labelstudio.read_export(path)
    raise BmmalError(f"{path}: cannot import {suffix or 'a file without suffix'}; use a Label Studio JSON "
                     "export (.json) or a CSV of id,label (.csv)")


def check(answers: list[Answer], known_ids: set[str], classes: tuple[str, ...], current: dict[str, str],
          overwrite: bool) -> tuple[dict[str, str], int, list[str]]:
    """(labels to write, answers already in the project, problems)."""
    problems: list[str] = []
    first: dict[str, Answer] = {}
    class_set = set(classes)
    for a in answers:
        if a.sample_id not in known_ids:
            problems.append(f"{a.where}: unknown sample id {a.sample_id!r}")
            continue
        if a.label not in class_set:
            problems.append(f"{a.where}: unknown class {a.label!r} for {a.sample_id!r} (classes: {', '.join(classes)})")
            continue
        earlier = first.setdefault(a.sample_id, a)
        if earlier.label != a.label:
            problems.append(f"{a.where}: conflicting labels for {a.sample_id!r}: {earlier.label!r} ({earlier.where}) "
                            f"and {a.label!r}")
    to_write, unchanged = {}, 0
    for sample_id, a in first.items():
        had = current.get(sample_id)
        if had == a.label:
            unchanged += 1
        elif had is not None and not overwrite:
            problems.append(f"{a.where}: {sample_id!r} is already labelled {had!r} in the project, the file says "
                            f"{a.label!r} (use --overwrite to replace)")
        else:
            to_write[sample_id] = a.label
    return to_write, unchanged, problems


def import_labels(project, path: str | Path, overwrite: bool = False) -> ImportReport:
    """Validate every answer in `path`, then write them all in one transaction; ImportRejected otherwise."""
    path = Path(path)
    answers, unanswered, problems = read_answers(path)
    to_write, unchanged, more = check(answers, set(project.ids), project.classes, project.store.labels(), overwrite)
    report = ImportReport(path, unchanged=unchanged, unanswered=unanswered, problems=problems + more)
    if report.problems:
        raise ImportRejected(report)
    report.applied = project.store.set_labels(sorted(to_write.items()), source=f"import:{path.name}")
    return report
