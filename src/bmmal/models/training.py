"""Building a model for a dataset and training it from scratch on the labelled rows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bmmal.config import ModelConfig, TrainConfig
from bmmal.data import MultimodalDataset
from bmmal.models.classifier import ModelOutput, MultimodalClassifier
from bmmal.models.encoders import build_encoder


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def input_shapes(dataset: MultimodalDataset) -> dict[str, tuple[int, ...]]:
    if hasattr(dataset, "input_shapes"):
        return dataset.input_shapes()
    sample = dataset.batch(np.arange(1))
    return {m: tuple(x.shape[1:]) for m, x in sample.items()}


def build_model(config: ModelConfig, dataset: MultimodalDataset, seed: int) -> MultimodalClassifier:
    """A freshly initialised model; the same seed gives the same weights."""
    torch.manual_seed(seed)
    encoders = {}
    for m, shape in input_shapes(dataset).items():
        kind = config.encoder_kind(m)
        options = dict(config.encoder_options.get(m, {}))
        if kind == "mlp":
            options = {"hidden_dims": config.hidden_dims, "embed_dim": config.embed_dim,
                       "dropout": config.dropout, **options}
        encoders[m] = build_encoder(kind, shape, **options)
    return MultimodalClassifier(encoders, num_classes=len(dataset.classes), fusion=config.fusion)


def multimodal_loss(out: ModelOutput, targets: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Weighted mean of the fused and the unimodal cross-entropies (equal weights by default)."""
    terms = [config.fused_loss_weight * F.cross_entropy(out.fused_logits, targets)]
    terms += [config.unimodal_loss_weight * F.cross_entropy(logits, targets)
              for logits in out.unimodal_logits.values()]
    total_weight = config.fused_loss_weight + config.unimodal_loss_weight * len(out.unimodal_logits)
    return torch.stack(terms).sum() / max(total_weight, 1e-12)


def make_optimizer(model: MultimodalClassifier, config: TrainConfig) -> torch.optim.Optimizer:
    groups = [{"params": params, "lr": config.encoder_lr.get(part, config.lr)}
              for part, params in model.parameter_groups().items() if params]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay)


class Trainer:
    """Trains a model from scratch on labelled rows: seeded, deterministic on CPU, CUDA when present."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.device = resolve_device(config.device)

    def fit(self, model: MultimodalClassifier, dataset: MultimodalDataset, rows: np.ndarray,
            labels: np.ndarray, seed: int) -> MultimodalClassifier:
        rows = np.asarray(rows)
        targets_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        model.to(self.device).train()
        optimizer = make_optimizer(model, self.config)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout masks
        batch_size = self.config.batch_size
        for _ in range(self.config.epochs):
            order = torch.randperm(len(rows), generator=generator).numpy()
            for start in range(0, len(rows), batch_size):
                batch = order[start:start + batch_size]
                if len(batch) < 2 and len(rows) >= 2:
                    continue  # a last batch of one adds noise and breaks batch statistics
                inputs = {m: x.to(self.device) for m, x in dataset.batch(rows[batch]).items()}
                out = model(inputs)
                loss = multimodal_loss(out, targets_all[batch].to(self.device), self.config)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return model.eval()
