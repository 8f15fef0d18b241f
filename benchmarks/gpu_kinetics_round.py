"""One training round of the Kinetics-Sounds paper config on generated clips: step time and peak GPU memory.

Writes synthetic clips in the real Kinetics-Sounds layout (10 JPEG frames of 128x171 and a 10 s 16 kHz WAV
per clip), loads them with the kinetics_sounds loader, and trains the config's model (R(2+1)D-18 video +
ResNet-18 audio, full size unless --width is given) with the library's TrainingLoop for a few steps, then
evaluates on the test clips. Reports:
- step_seconds: wall time between optimizer steps after warm-up (includes waiting for data);
- compute_step_seconds: forward + backward + step on one batch already on the device (no data loading);
- peak_memory_gib: torch.cuda.max_memory_allocated.

    python benchmarks/gpu_kinetics_round.py                     # full size (GPU)
    python benchmarks/gpu_kinetics_round.py --width 8 --clips 8 --batch-size 4 --epochs 2   # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from bmmal import datasets
from bmmal.config import load_yaml, parse_config
from bmmal.datasets.fixtures import write_audiovisual
from bmmal.metrics import evaluate
from bmmal.models.training import TrainingLoop, amp_dtype, build_model, make_optimizer, multimodal_loss

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "kinetics_sounds.yaml"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=64, help="training clips (test clips: a quarter as many)")
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=5, help="epochs of the round (steps = epochs * clips / batch)")
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--width", type=int, default=64, help="encoder width (64 = full size)")
    p.add_argument("--num-workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--amp", default="bf16", choices=["off", "bf16", "fp16"])
    p.add_argument("--data", default=None, help="folder for the generated clips (default: a temporary one)")
    args = p.parse_args()

    raw = load_yaml(CONFIG)
    classes = raw["dataset"]["options"]["classes"][:args.classes]
    root = Path(args.data or tempfile.mkdtemp(prefix="ks-bench-"))
    start = time.perf_counter()
    per_class = {"train": -(-args.clips // args.classes), "test": max(1, args.clips // (4 * args.classes))}
    if not (root / "train").is_dir():
        write_audiovisual(root, "kinetics_sounds", classes, per_class)
    generate_seconds = time.perf_counter() - start

    raw["dataset"]["options"].update(root=str(root))
    for m in ("video", "audio"):
        raw["model"]["encoder_options"][m]["width"] = args.width
    raw["train"].update(batch_size=args.batch_size, epochs=args.epochs, amp=args.amp, num_workers=args.num_workers)
    config = parse_config(raw, source=str(CONFIG))
    train, test = datasets.load(config.dataset.name, config.dataset.modalities, seed=config.seed,
                                **config.dataset.options)
    trainer = TrainingLoop(config.train)
    device = trainer.device
    model = build_model(config.model, train, seed=0)

    # time the library's own training loop: a timestamp after every optimizer step
    stamps: list[float] = []

    def after_step(optimizer, args_, kwargs_):
        sync(device)
        stamps.append(time.perf_counter())

    handle = register_optimizer_step_post_hook(after_step)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    rows = np.arange(len(train))
    trainer.fit(model, train, rows, train.labels, seed=0)
    sync(device)
    fit_seconds = time.perf_counter() - start
    handle.remove()
    steps = np.diff(stamps)[args.warmup_steps:]

    # compute only: the same step on one batch that already sits on the device
    model.train()
    optimizer = make_optimizer(model, config.train)
    batch = {m: x.to(device) for m, x in train.train_batch(rows[:args.batch_size], 0).items()}
    targets = torch.as_tensor(train.labels[rows[:args.batch_size]], device=device)
    dtype = amp_dtype(config.train, device)
    compute = []
    for i in range(args.warmup_steps + 5):
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = multimodal_loss(model(batch), targets, config.train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        if i >= args.warmup_steps:
            compute.append(time.perf_counter() - t0)

    start = time.perf_counter()
    metrics = evaluate(model.eval(), test, config.eval_batch_size)
    eval_seconds = time.perf_counter() - start

    result = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "amp": args.amp if device.type == "cuda" else "off (CPU)",
        "width": args.width, "batch_size": args.batch_size, "num_workers": args.num_workers,
        "train_clips": len(train), "test_clips": len(test), "optimizer_steps": len(stamps),
        "generate_seconds": round(generate_seconds, 2), "fit_seconds": round(fit_seconds, 2),
        "step_seconds_median": round(statistics.median(steps), 4) if len(steps) else None,
        "step_seconds_all": [round(s, 4) for s in steps],
        "compute_step_seconds_median": round(statistics.median(compute), 4),
        "clips_per_second_compute": round(args.batch_size / statistics.median(compute), 1),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
        "eval_seconds": round(eval_seconds, 2), "test_accuracy_micro": round(metrics["accuracy_micro"], 3),
    }
    print(json.dumps(result, indent=1))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_kinetics_round.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
