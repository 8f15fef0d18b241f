"""The manifest's samples as the labelling page and the exports show them: per modality its kind (image,
audio or text) and each sample's file or text. Parsing is the manifest loader's (`bmmal.datasets.manifest`);
cells are turned into files or text only when a sample is shown.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from bmmal.datasets.encoded import check_modalities
from bmmal.datasets.manifest import RESERVED, cell_input, read_rows
from bmmal.errors import BmmalError


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
        # The loader checked at `bmmal init` that every cell of a column is of one kind.
        return {m: self._input(self.ids[0], m)[0] for m in self.modalities}

    def kind(self, modality: str) -> str:
        """"image", "audio" or "text"."""
        return self._kinds[modality]

    def path(self, sample_id: str, modality: str) -> Path:
        """The image or audio file of a sample's modality."""
        kind, item = self._input(sample_id, modality)
        if kind == "text":
            raise BmmalError(f"modality {modality!r} holds text, not files")
        return item

    def text(self, sample_id: str, modality: str) -> str:
        """The text of a sample's text modality (inline, or the content of its .txt file)."""
        kind, item = self._input(sample_id, modality)
        if kind != "text":
            raise BmmalError(f"modality {modality!r} holds {kind} files, not text")
        return item
