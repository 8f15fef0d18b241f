"""Pool inference: any multimodal model + batches in pool order -> PoolOutputs, computing only what is needed.

A model is anything with two methods (no bmmal base class needed), the `MultimodalModel` protocol:

- `embed(batch) -> dict[str, Tensor]`: one [B, d_m] embedding per modality, always in the same order;
- `fuse(embeddings) -> Tensor`: the fusion head's [B, C] logits; it must accept a modality's embedding
  replaced by zeros (that is how a modality is "absent" for the Shapley values).

Optionally `unimodal_logits(embeddings) -> dict[str, Tensor]` (one head per modality), needed only for
`PoolOutputs.unimodal_probs`. bmmal's own `MultimodalClassifier` has all three.

Missing modalities: the pool's `present` mask (bool [N, M], from the dataset or given) travels into
`PoolOutputs.present`; the embedding of an absent modality is set to zero before `fuse` (whatever
`embed` made of its NaN input row), and it is absent from every Shapley coalition (value exactly 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from bmmal.contribution import shapley, zero_absent
from bmmal.data import dataset_present
from bmmal.errors import BmmalError
from bmmal.outputs import FIELDS, PoolOutputs


@runtime_checkable
class MultimodalModel(Protocol):
    """What `pool_outputs` needs from a model: per-modality embeddings and a fusion head over them."""

    def embed(self, batch: Any) -> dict[str, torch.Tensor]:
        """One [B, d_m] embedding per modality, in a fixed modality order."""

    def fuse(self, embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, C] fused logits; a modality's embedding may be all zeros (absent)."""


def model_device(model) -> torch.device:
    if isinstance(model, nn.Module):
        parameter = next(model.parameters(), None)
        if parameter is not None:
            return parameter.device
    return torch.device("cpu")


def to_device(batch: Any, device: torch.device) -> Any:
    """`batch` with every tensor in it (dicts, lists and tuples followed) moved to `device`."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def dataset_batches(dataset, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of a bmmal dataset in row order."""
    for start in range(0, len(dataset), batch_size):
        yield dataset.batch(np.arange(start, min(start + batch_size, len(dataset))))


def _is_dataset(data) -> bool:
    return hasattr(data, "batch") and hasattr(data, "modalities")


def _batches(data, batch_size: int) -> Iterable:
    return dataset_batches(data, batch_size) if _is_dataset(data) else data


def _check_embeddings(embeddings, order: tuple[str, ...] | None) -> tuple[str, ...]:
    if not isinstance(embeddings, dict) or not embeddings:
        raise BmmalError(f"model.embed must return a non-empty dict of modality -> [B, d] tensor, "
                         f"got {type(embeddings).__name__}")
    names = tuple(embeddings)
    if order is not None and names != order:
        raise BmmalError(f"model.embed returned modalities {list(names)} after {list(order)}; keep one order")
    sizes = {len(z) for z in embeddings.values()}
    if any(not torch.is_tensor(z) or z.dim() != 2 for z in embeddings.values()) or len(sizes) != 1:
        raise BmmalError("model.embed must return 2-D tensors [B, d_m] with the same B for every modality")
    return names


def _set_dropout(model, active: bool) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train(active)


def cpu_fuse(model, device: torch.device) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """`model.fuse` taking and returning CPU tensors (differentiable: DeepFool uses its gradient)."""
    def fuse(embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
        return model.fuse({m: z.to(device) for m, z in embeddings.items()}).float().cpu()

    return fuse


def _progress(batches: Iterable, enabled: bool, description: str, total: int | None) -> Iterable:
    if not enabled:
        return batches
    from rich.progress import track

    return track(batches, description=description, total=total, transient=True)


def _length(data, batch_size: int) -> int | None:
    try:
        n = len(data)
    except TypeError:
        return None
    return -(-n // batch_size) if _is_dataset(data) else n


@torch.no_grad()
def _one_pass(model, data, batch_size: int, device: torch.device, needs: set[str], progress: bool,
              description: str, present: torch.Tensor | None = None) -> dict:
    """Fused probabilities and the needed per-row outputs over all batches of `data`, on the CPU."""
    order = None
    parts: dict[str, list] = {"probs": [], "embeddings": [], "unimodal_probs": [], "shapley": []}
    start = 0
    for batch in _progress(_batches(data, batch_size), progress, description, _length(data, batch_size)):
        embeddings = model.embed(to_device(batch, device))
        order = _check_embeddings(embeddings, order)
        rows = len(next(iter(embeddings.values())))
        here = present[start:start + rows] if present is not None else None
        start += rows
        if here is not None and len(here) != rows:
            raise BmmalError(f"present has {len(present)} rows, the data yielded more")
        if here is not None and here.shape[1] != len(order):
            raise BmmalError(f"present has {here.shape[1]} modalities, model.embed returned {len(order)}")
        if here is not None and not bool(here.all()):
            embeddings = zero_absent(embeddings, here)
        logits = model.fuse(embeddings)
        parts["probs"].append(torch.softmax(logits.float(), 1).cpu())
        if "embeddings" in needs:
            parts["embeddings"].append({m: z.float().cpu() for m, z in embeddings.items()})
        if "unimodal_probs" in needs:
            heads = model.unimodal_logits(embeddings)
            parts["unimodal_probs"].append({m: torch.softmax(heads[m].float(), 1).cpu() for m in order})
        if "shapley" in needs:
            parts["shapley"].append(shapley(model.fuse, embeddings, present=here).float().cpu())
    if order is None:
        raise BmmalError("the data yielded no batches")
    out = {"probs": torch.cat(parts["probs"]), "modalities": order}
    for key in ("embeddings", "unimodal_probs"):
        if parts[key]:
            out[key] = {m: torch.cat([p[m] for p in parts[key]]) for m in order}
    if parts["shapley"]:
        out["shapley"] = torch.cat(parts["shapley"])
    return out


def mc_dropout_probs(model, data, passes: int, seed: int, batch_size: int = 1024, device: torch.device | None = None,
                     progress: bool = False, present: torch.Tensor | None = None) -> torch.Tensor:
    """[T, N, C] fused probabilities under T passes with dropout active (everything else in eval mode)."""
    if not isinstance(model, nn.Module):
        raise BmmalError("MC-dropout passes (PoolOutputs.mc_probs) need a torch nn.Module with dropout layers")
    device = device or model_device(model)
    model.eval()
    _set_dropout(model, True)
    torch.manual_seed(seed)
    try:
        return torch.stack([_one_pass(model, data, batch_size, device, set(), progress, f"MC pass {t + 1}",
                                      present)["probs"] for t in range(passes)])
    finally:
        model.eval()


def pool_outputs(model, data, labeled, needs: Iterable[str] = ("probs",), *, batch_size: int = 1024,
                 device: str | torch.device | None = None, mc_passes: int = 10, seed: int = 0,
                 progress: bool = False, present=None) -> PoolOutputs:
    """PoolOutputs of `model` over the pool, computing only the fields in `needs` (a strategy's `needs`).

    `data` is a bmmal dataset or any re-iterable of batches in pool order (a torch DataLoader with
    `shuffle=False`); each batch is moved to the device and passed to `model.embed` as it is.
    `labeled` is a bool array over the pool rows. Probabilities are always computed; embeddings,
    unimodal probabilities, exact Shapley values (all 2^M coalitions through `model.fuse`) and
    `mc_passes` MC-dropout passes only when needed. Everything returned is on the CPU in float32.
    `present` (bool [N, M]) says which modality of which row exists; default: the dataset's `present`
    (all true for batches from an iterable).
    """
    if isinstance(needs, str):
        raise BmmalError(f"needs must be a collection of PoolOutputs field names (such as strategy.needs), "
                         f"got the string {needs!r}")
    if isinstance(getattr(data, "sampler", None), torch.utils.data.RandomSampler):
        raise BmmalError("data shuffles its samples (a DataLoader with shuffle=True); pool outputs need the batches "
                         "in pool order: use shuffle=False")
    needs = set(needs) | {"probs"}
    unknown = needs - set(FIELDS)
    if unknown:
        raise BmmalError(f"unknown PoolOutputs fields requested: {sorted(unknown)}; known: {', '.join(FIELDS)}")
    for method in ("embed", "fuse") + (("unimodal_logits",) if "unimodal_probs" in needs else ()):
        if not callable(getattr(model, method, None)):
            raise BmmalError(f"the model has no {method}() method (see bmmal.MultimodalModel)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BmmalError(f"batch_size must be a positive integer, got {batch_size!r}")
    labeled = np.asarray(labeled)
    if labeled.dtype != bool or labeled.ndim != 1:
        raise BmmalError(f"labeled must be a 1-D bool array over the pool, got dtype {labeled.dtype} "
                         f"and shape {labeled.shape}")
    if device is not None and isinstance(model, nn.Module):
        model.to(device)
    if present is None and _is_dataset(data):
        present = dataset_present(data)
    if present is not None:
        present = np.asarray(present)
        if present.dtype != bool or present.ndim != 2 or len(present) != len(labeled):
            raise BmmalError(f"present must be a bool [N, M] array over the pool (N = {len(labeled)}), got dtype "
                             f"{present.dtype} and shape {present.shape}")
        present = torch.as_tensor(present)
    device = torch.device(device) if device is not None else model_device(model)
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        base = _one_pass(model, data, batch_size, device, needs, progress, "pool outputs", present)
        if len(base["probs"]) != len(labeled):
            raise BmmalError(f"the data yielded {len(base['probs'])} rows but labeled has {len(labeled)}")
        mc = mc_dropout_probs(model, data, mc_passes, seed, batch_size, device, progress, present) \
            if "mc_probs" in needs else None
    finally:
        if was_training:
            model.train()
    return PoolOutputs(labeled=torch.tensor(labeled), probs=base["probs"], embeddings=base.get("embeddings", {}),
                       unimodal_probs=base.get("unimodal_probs"), shapley=base.get("shapley"), mc_probs=mc,
                       fuse=cpu_fuse(model, device) if "fuse" in needs else None,
                       present=present if present is not None
                       else torch.ones(len(labeled), len(base["modalities"]), dtype=torch.bool))
