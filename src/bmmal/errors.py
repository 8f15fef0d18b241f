"""The one exception type that the CLI turns into a one-line message and exit code 2, the one warning type it
shows as one line, and the did-you-mean hint of messages about a misspelled name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BmmalError(ValueError):
    """Bad input from the user: an unknown name, a wrong type, a missing file, an impossible budget."""


class Interrupted(Exception):
    """Ctrl-C during a long command; the message says where the state is and the command that continues it."""


class BmmalWarning(UserWarning):
    """Input that works but is probably not what the user meant; the CLI shows it as one line."""


# Words users write for an option that has another name here; used when spelling alone finds nothing close.
SYNONYMS = {"file": "path", "filename": "path", "filepath": "path", "file_path": "path", "npz": "path",
            "manifest": "path", "dir": "root", "directory": "root", "folder": "root", "data_dir": "root",
            "data_root": "root", "cache": "cache_dir", "learning_rate": "lr", "n_rounds": "rounds",
            "num_rounds": "rounds", "initial": "initial_budget", "batch": "batch_size", "encoders": "extractors"}


def did_you_mean(name: object, choices: Iterable[object]) -> str:
    """" (did you mean 'path'?)" for the closest of `choices` to a misspelled `name` (by spelling, else by
    a common synonym), or "" if none is close."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    if not close and SYNONYMS.get(str(name).lower()) in choices:
        close = [SYNONYMS[str(name).lower()]]
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_seed(seed: object, name: str = "seed") -> int:
    """`seed` as an int if it is a non-negative integer (not true/false, not 1.5); else a one-line error
    naming the argument."""
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise BmmalError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)
