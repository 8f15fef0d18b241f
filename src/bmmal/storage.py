"""Atomic file writes (write a temporary file in the same folder, flush it to disk, then rename) and the readers
that turn undecodable text into one line naming the file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bmmal.errors import BmmalError


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def read_json(path: str | Path) -> Any:
    """Parsed JSON; a BmmalError naming the file for text that is not UTF-8 JSON (a damaged file)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BmmalError(f"{path} is damaged (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise BmmalError(f"{path} is damaged (not valid JSON: {e.msg} at line {e.lineno})") from None


def not_utf8(path: str | Path, error: UnicodeDecodeError) -> BmmalError:
    return BmmalError(f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8")


def read_text(path: str | Path) -> str:
    """The UTF-8 text of a file the user wrote (a leading byte-order mark is dropped); text in another encoding
    is a one-line error naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise not_utf8(path, e) from None
