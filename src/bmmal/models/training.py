"""Building a model for a dataset and training it from scratch on the labelled rows."""

from __future__ import annotations

import numpy as np
import torch

from bmmal import trainers
from bmmal.config import ModelConfig, TrainConfig
from bmmal.data import MultimodalDataset
from bmmal.models import r2plus1d, resnet, small, text
from bmmal.models.classifier import ModelOutput, MultimodalClassifier
from bmmal.models.encoders import build_encoder

ENCODER_MODULES = (resnet, r2plus1d, small, text)  # imported for their encoder registrations


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
    return MultimodalClassifier(encoders, num_classes=len(dataset.classes), fusion=config.fusion,
                                head_init=config.head_init, absent=config.absent)


def multimodal_loss(out: ModelOutput, targets: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Weighted mean of the fused and the unimodal cross-entropies (equal weights by default)."""
    return trainers.loss_terms(out, targets, config).total


def make_optimizer(model: MultimodalClassifier, config: TrainConfig) -> torch.optim.Optimizer:
    groups = [{"params": params, "lr": config.encoder_lr.get(part, config.lr)}
              for part, params in model.parameter_groups().items() if params]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)


def lr_factor(step: int, steps_per_epoch: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at optimiser step `step` (0-based), as the reference schedules it: linear
    warm-up per step over the first warmup_epochs x steps_per_epoch steps ((step + 1) / warm-up steps), then
    x lr_gamma at each milestone epoch passed (the epoch of a step is step // steps_per_epoch)."""
    warmup_steps = config.warmup_epochs * steps_per_epoch
    warmup = (step + 1) / warmup_steps if step < warmup_steps else 1.0
    epoch = step // max(steps_per_epoch, 1)
    return warmup * config.lr_gamma ** sum(epoch >= m for m in config.lr_milestones)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """A LambdaLR stepped after every optimiser step, or None when no schedule is configured."""
    if not config.lr_milestones and not config.warmup_epochs:
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, steps_per_epoch, config))


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    """One epoch's shuffled batches of positions 0..n-1 (a last batch of one is dropped when n >= 2:
    it adds noise and breaks batch statistics)."""
    order = torch.randperm(n, generator=generator).numpy()
    batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    return [b for b in batches if len(b) >= 2 or n < 2]


class _TrainBatches(torch.utils.data.Dataset):
    """Batch i of a file-backed dataset, augmented with its own seed: what DataLoader workers compute."""

    def __init__(self, dataset, batches: list[np.ndarray], seeds: list[int]):
        self.dataset, self.batches, self.seeds = dataset, batches, seeds

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.dataset.train_batch(self.batches[i], self.seeds[i])


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.amp == "off":
        return None
    return torch.bfloat16 if config.amp == "bf16" else torch.float16


class TrainingLoop:
    """Trains a model from scratch on labelled rows: seeded, deterministic on CPU, CUDA when present.

    Datasets with a `train_batch(rows, seed)` method (file-backed ones) get their training batches,
    augmented, from a DataLoader with `num_workers` worker processes; in-memory datasets are indexed
    directly. Mixed precision (`amp`) applies on CUDA only. The per-batch step (loss, backward,
    gradient modulation) is the `bmmal.trainers` method named by `config.trainer`.
    """

    def __init__(self, config: TrainConfig):
        self.config = config
        self.device = resolve_device(config.device)
        self.method = trainers.get(config.trainer, **config.trainer_params)

    def _labeled_embeddings(self, model: MultimodalClassifier, dataset: MultimodalDataset, rows: np.ndarray,
                             targets: torch.Tensor):
        """Embeddings of all labelled rows in eval mode, without gradient (for whole-set trainer statistics)."""
        def compute():
            model.eval()
            with torch.no_grad():
                parts = [model.embed({m: x.to(self.device) for m, x in dataset.batch(rows[s:s + 1024]).items()})
                         for s in range(0, len(rows), 1024)]
            model.train()
            return {m: torch.cat([p[m] for p in parts]) for m in model.modalities}, targets.to(self.device)
        return compute

    def _inputs(self, dataset: MultimodalDataset, rows: np.ndarray, plan: list[tuple[int, np.ndarray]], seed: int):
        """Model inputs for each planned batch, in order."""
        if not hasattr(dataset, "train_batch"):
            for _, batch in plan:
                yield dataset.batch(rows[batch])
            return
        seeds = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 1]).generate_state(max(len(plan), 1))
        batches = _TrainBatches(dataset, [rows[batch] for _, batch in plan], [int(x) for x in seeds[:len(plan)]])
        loader = torch.utils.data.DataLoader(
            batches, batch_size=None, shuffle=False, num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(int(seed)),
            persistent_workers=False, prefetch_factor=4 if self.config.num_workers else None)
        yield from loader

    def fit(self, model: MultimodalClassifier, dataset: MultimodalDataset, rows: np.ndarray,
            labels: np.ndarray, seed: int) -> MultimodalClassifier:
        rows = np.asarray(rows)
        targets_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        model.to(self.device).train()
        optimizer = make_optimizer(model, self.config)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout masks
        plan = [(epoch, batch) for epoch in range(self.config.epochs)
                for batch in epoch_batches(len(rows), self.config.batch_size, generator)]
        scheduler = make_scheduler(optimizer, self.config, steps_per_epoch=sum(e == 0 for e, _ in plan))
        dtype = amp_dtype(self.config, self.device)
        scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
        non_blocking = self.device.type == "cuda"
        labeled = self._labeled_embeddings(model, dataset, rows, targets_all)
        self.method.start(model, self.config)
        for i, ((epoch, batch), inputs) in enumerate(zip(plan, self._inputs(dataset, rows, plan, seed))):
            if i == 0 or plan[i - 1][0] != epoch:
                self.method.start_epoch(epoch, model, labeled)
            inputs = {m: x.to(self.device, non_blocking=non_blocking) for m, x in inputs.items()}
            targets = targets_all[batch].to(self.device)
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                out = model(inputs)
                terms = self.method.loss(out, targets)
            optimizer.zero_grad(set_to_none=True)
            self.method.backward(model, out, terms, targets, scaler.scale)
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
        return model.eval()
