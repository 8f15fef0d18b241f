"""PoolOutputs, what strategies consume, and the inference pass that fills only what is needed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bmmal.contribution import shapley
from bmmal.data import MultimodalDataset

FIELDS = ("probs", "embeddings", "unimodal_probs", "shapley", "mc_probs", "fuse")


@dataclass
class PoolOutputs:
    """One row per training-set sample (labelled and unlabelled); see DESIGN section 4."""

    labeled: torch.Tensor  # bool [N]
    probs: torch.Tensor  # [N, C] fused class probabilities
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [N, d_m]
    unimodal_probs: dict[str, torch.Tensor] | None = None
    shapley: torch.Tensor | None = None  # [N, M, C]
    mc_probs: torch.Tensor | None = None  # [T, N, C]
    fuse: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        self.labeled = torch.as_tensor(self.labeled, dtype=torch.bool)
        self.probs = torch.as_tensor(self.probs)

    def __len__(self) -> int:
        return len(self.labeled)

    @property
    def unlabeled_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.labeled.cpu().numpy())

    def fused_embedding(self) -> torch.Tensor:
        """[N, sum d_m]: the concatenated modality embeddings, as fed to the fused head."""
        return torch.cat(list(self.embeddings.values()), dim=1)


def _set_dropout(model: nn.Module, active: bool) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train(active)


@torch.no_grad()
def predict(model, dataset: MultimodalDataset, batch_size: int = 1024, rows: np.ndarray | None = None,
            keep_embeddings: bool = True) -> dict:
    """Fused and unimodal probabilities (and embeddings) for `rows` of `dataset`, on CPU."""
    device = next(model.parameters()).device
    rows = np.arange(len(dataset)) if rows is None else np.asarray(rows)
    model.eval()
    probs, uni, emb = [], {m: [] for m in model.modalities}, {m: [] for m in model.modalities}
    for start in range(0, len(rows), batch_size):
        inputs = {m: x.to(device) for m, x in dataset.batch(rows[start:start + batch_size]).items()}
        out = model(inputs)
        probs.append(torch.softmax(out.fused_logits.float(), 1).cpu())
        for m in model.modalities:
            uni[m].append(torch.softmax(out.unimodal_logits[m].float(), 1).cpu())
            if keep_embeddings:
                emb[m].append(out.embeddings[m].float().cpu())
    result = {"probs": torch.cat(probs), "unimodal_probs": {m: torch.cat(v) for m, v in uni.items()}}
    if keep_embeddings:
        result["embeddings"] = {m: torch.cat(v) for m, v in emb.items()}
    return result


@torch.no_grad()
def mc_dropout_probs(model, dataset: MultimodalDataset, passes: int, seed: int, batch_size: int = 1024
                     ) -> torch.Tensor:
    """[T, N, C] fused probabilities under T passes with dropout active (everything else in eval mode)."""
    device = next(model.parameters()).device
    model.eval()
    _set_dropout(model, True)
    torch.manual_seed(seed)
    try:
        runs = []
        for _ in range(passes):
            chunks = []
            for start in range(0, len(dataset), batch_size):
                rows = np.arange(start, min(start + batch_size, len(dataset)))
                inputs = {m: x.to(device) for m, x in dataset.batch(rows).items()}
                chunks.append(torch.softmax(model(inputs).fused_logits.float(), 1).cpu())
            runs.append(torch.cat(chunks))
        return torch.stack(runs)
    finally:
        model.eval()


def _cpu_fuse(model) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    device = next(model.parameters()).device

    def fuse(embeddings: dict[str, torch.Tensor]) -> torch.Tensor:  # differentiable (DeepFool); callers set no_grad
        return model.fuse({m: z.to(device) for m, z in embeddings.items()}).float().cpu()

    return fuse


def infer(model, dataset: MultimodalDataset, labeled: np.ndarray, needs: Iterable[str], mc_passes: int = 10,
          seed: int = 0, batch_size: int = 1024) -> PoolOutputs:
    """PoolOutputs for the whole pool, computing only the fields in `needs` (probs always)."""
    needs = set(needs)
    unknown = needs - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown PoolOutputs fields requested: {sorted(unknown)}")
    keep_embeddings = bool(needs & {"embeddings", "shapley"})
    base = predict(model, dataset, batch_size, keep_embeddings=keep_embeddings)
    fuse = _cpu_fuse(model)
    out = PoolOutputs(labeled=torch.as_tensor(labeled, dtype=torch.bool), probs=base["probs"],
                      embeddings=base.get("embeddings", {}) if keep_embeddings else {})
    if "unimodal_probs" in needs:
        out.unimodal_probs = base["unimodal_probs"]
    if "shapley" in needs:
        out.shapley = shapley(fuse, base["embeddings"])
    if "mc_probs" in needs:
        out.mc_probs = mc_dropout_probs(model, dataset, mc_passes, seed, batch_size)
    if "fuse" in needs:
        out.fuse = fuse
    return out
