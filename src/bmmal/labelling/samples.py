"""The manifest's samples as the labelling page and the exports show them: per modality its kind (image,
audio or text) and each sample's file or text. Parsing is the manifest loader's (`bmmal.datasets.manifest`);
cells are turned into files or text only when a sample is shown. An empty cell is a missing modality: the
page shows "missing" and the exports mark it (a sample with every modality empty cannot be shown).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from bmmal.datasets.encoded import check_modalities
from bmmal.datasets.manifest import RESERVED, cell_input, read_rows
from bmmal.errors import BmmalError
from bmmal.features import kind_of_suffix


class Samples:
    def __init__(self, manifest: str | Path, modalities=None):
        self.manifest = Path(manifest)
        if not self.manifest.is_file():
            raise BmmalError(f"manifest not found: {self.manifest}")
        columns, rows = read_rows(self.manifest)
        known = [c for c in columns if c not in RESERVED]
        self.modalities = check_modalities(str(self.manifest), modalities or known, known)
        self.ids = tuple(r["id"] for r in rows)
        self.row_of = {sample_id: row for row, sample_id in enumerate(self.ids)}
        self.cells = {m: [r[m] for r in rows] for m in self.modalities}

    @property
    def root(self) -> Path:
        """The manifest's folder: relative file paths in it are relative to this."""
        return self.manifest.parent

    def row(self, sample_id: str) -> int:
        if sample_id not in self.row_of:
            raise BmmalError(f"unknown sample id {sample_id!r}")
        return self.row_of[sample_id]

    def _input(self, sample_id: str, modality: str):
        return cell_input(self.cells[modality][self.row(sample_id)], self.root)

    @cached_property
    def _kinds(self) -> dict[str, str]:
        # The loader checked at `bmmal init` that every cell of a column is of one kind; empty cells are missing.
        first = {m: next((i for i, cell in zip(self.ids, self.cells[m]) if cell), None) for m in self.modalities}
        return {m: self._input(first[m], m)[0] if first[m] is not None else "text" for m in self.modalities}

    def missing(self, sample_id: str) -> list[str]:
        """The modalities this sample lacks (empty cells), in modality order."""
        row = self.row(sample_id)
        return [m for m in self.modalities if not self.cells[m][row]]

    def kind(self, modality: str) -> str:
        """"image", "audio" or "text"."""
        return self._kinds[modality]

    def path(self, sample_id: str, modality: str) -> Path:
        """The image or audio file of a sample's modality."""
        kind, item = self._input(sample_id, modality)
        if kind == "text":
            raise BmmalError(f"modality {modality!r} holds text, not files")
        return item

    def problem(self, sample_id: str) -> str | None:
        """Why this sample cannot be shown (a file missing or unreadable, the id gone from the manifest), in
        words fit for a labeller's screen (paths as the manifest writes them, never absolute); None if whole."""
        if sample_id not in self.row_of:
            return "it is no longer in the manifest"
        if len(self.missing(sample_id)) == len(self.modalities):
            return "every modality of it is empty in the manifest"
        for m in self.modalities:
            cell = self.cells[m][self.row_of[sample_id]]
            if not cell:
                continue  # a missing modality: shown as "missing"
            kind = kind_of_suffix(Path(cell).suffix) if "\n" not in cell else None
            if kind is None:
                continue  # inline text
            path = Path(cell).expanduser()
            shown = path.name if path.is_absolute() else path.as_posix()
            path = path if path.is_absolute() else self.root / path
            if not path.is_file():
                return f"its {m} file {shown} is missing"
            try:
                if kind == "text":
                    path.read_text(encoding="utf-8")
                else:
                    with path.open("rb"):
                        pass
            except UnicodeDecodeError:
                return f"its {m} file {shown} is not UTF-8 text"
            except OSError as e:
                return f"its {m} file {shown} cannot be read ({e.strerror or type(e).__name__})"
        return None

    def text(self, sample_id: str, modality: str) -> str:
        """The text of a sample's text modality (inline, or the content of its .txt file)."""
        kind, item = self._input(sample_id, modality)
        if kind != "text":
            raise BmmalError(f"modality {modality!r} holds {kind} files, not text")
        return item
