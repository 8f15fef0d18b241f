"""Loading pretrained encoder weights from a local file, and the rule for when random weights are allowed.

Weight files are PyTorch state dicts (`torch.save(model.state_dict(), path)`), optionally wrapped in
{"state_dict": ...} or {"model": ...} and with a "module." prefix (DataParallel). Key names follow
torchvision's, so torchvision checkpoint files (resnet18/50/101, r2plus1d_18) load directly; the
classification layer `fc.*` is ignored because encoders end at the pooled features.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from bmmal.errors import BmmalError

log = logging.getLogger("bmmal")


def wants_weights(kind: str, weights: str | None, pretrained: bool, allow_random_init: bool, hint: str) -> Path | None:
    """The weight file to load, or None for random initialisation; a BmmalError if pretrained weights are
    asked for but not available (random weights only when the user opted in)."""
    if not pretrained:
        return None
    if weights:
        path = Path(weights).expanduser()
        if path.is_file():
            return path
        problem = f"weights file not found: {path}"
    else:
        problem = "no weights file given"
    if allow_random_init:
        log.warning("encoder %s: %s; starting from random weights (allow_random_init: true)", kind, problem)
        return None
    raise BmmalError(f"encoder {kind!r} is pretrained but {problem}; set encoder option weights: <path to a "
                     f"state dict> ({hint}), or pretrained: false to train from random weights")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise BmmalError(f"cannot read weights file {path}: {str(e).splitlines()[0]}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise BmmalError(f"weights file {path} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(module: nn.Module, path: Path, adapt: Callable[[dict], dict] | None = None,
                 ignore_prefixes: tuple[str, ...] = ("fc.",)) -> None:
    """Load a state dict file into `module`, strictly (every parameter must be there with its shape)."""
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(ignore_prefixes)}
    if adapt is not None:
        state = adapt(state)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        what = (f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}" if unexpected
                else f"{wrong[0]!r} has shape {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise BmmalError(f"weights file {path} does not fit this encoder: {what} "
                         f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong shape)")
    module.load_state_dict(state)
