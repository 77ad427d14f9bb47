"""Training a UID bundle (reference 3.2, training loop), detectron2-compatible in its outputs.

``train(bundle_dir)`` reads ``config/config.yaml`` and ``data/*.svg``, trains on random augmented crops of
the training split and writes into ``<bundle>/output/``:

* ``model_{iter:07d}.pth`` every ``CHECKPOINT_PERIOD`` iterations (e.g. ``model_0004999.pth``) and
  ``model_final.pth`` at the end, plus ``last_checkpoint`` naming the latest file (detectron2's layout);
* ``metrics.jsonl``: one JSON object per line, training losses every ``PRINTING_PERIOD`` iterations
  (window means) and validation losses after the first step, every ``TEST_PERIOD`` iterations and at the
  end (``val_<loss>``, ``val_total_loss`` = mean per batch, ``val_instance_weighted_total_loss``);
* ``config.yaml``: the full configuration of the run.

Unreadable ``data/*.svg`` files are skipped (``dataset.read_annotated_images``): each is logged, listed in
``TrainResult.skipped`` as ``(file, reason)`` and recorded in ``metrics.jsonl`` as one
``{"event": "data", "skipped_files": [{"file", "reason"}, ...]}`` line before the first training line.

Resume / restart follow detectron2's ``resume_or_load``: by default a run continues from
``last_checkpoint`` (model, optimiser, iteration); ``restart=True`` starts at iteration 0. Without a
checkpoint to resume, an existing ``model_final.pth`` is the starting point (fine-tuning), else the
initialisation chosen by ``PRETRAINED`` (random by default).

The schedule is detectron2's ``WarmupMultiStepLR``: linear warm-up from ``WARMUP_FACTOR`` over
``WARMUP_ITERS``, then x ``GAMMA`` at each of ``STEPS``. A non-finite loss stops training with an error
(rather than silently writing NaN weights).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from stickypi_assets.ml import training
from stickypi_assets.ml.uid.config import UidConfig, bundle_config, save_config
from stickypi_assets.ml.uid.dataset import (
    AnnotatedImage,
    RandomCropStream,
    Sample,
    collate_samples,
    iter_validation_samples,
    read_annotated_images,
    split_images,
)
from stickypi_assets.ml.uid.model import MaskRCNNDetector, weights_version

log = logging.getLogger(__name__)

FINAL_WEIGHTS = "model_final.pth"
LAST_CHECKPOINT = "last_checkpoint"
METRICS_FILE = "metrics.jsonl"


@dataclass
class TrainResult:
    """What a training run did and where its outputs are."""

    output_dir: Path
    weights: Path
    version: str
    start_iteration: int
    iterations: int  # total completed iterations, resumed ones included
    seconds: float
    n_train_images: int
    n_validation_images: int
    last_losses: dict[str, float] = field(default_factory=dict)
    validation_losses: dict[str, float] = field(default_factory=dict)
    #: ``(file, reason)`` of every ``data/*.svg`` left out because it could not be read
    skipped: list[tuple[str, str]] = field(default_factory=list)


def lr_factor(iteration: int, config: UidConfig) -> float:
    """Multiplier of ``BASE_LR`` at ``iteration`` (detectron2 ``WarmupMultiStepLR``, linear warm-up)."""
    factor = config.gamma ** bisect.bisect_right(config.steps, iteration)
    if iteration < config.warmup_iters:
        alpha = iteration / config.warmup_iters
        factor *= config.warmup_factor * (1 - alpha) + alpha
    return factor


def make_optimizer(detector: MaskRCNNDetector, config: UidConfig) -> torch.optim.Optimizer:
    return training.make_optimizer(detector.parameters(), config.optimizer, config.base_lr, config.momentum,
                                   config.weight_decay)  # fmt: skip


def _batches(stream: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    batch: list[Sample] = []
    for sample in stream:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def validation_losses(
    detector: MaskRCNNDetector, images: Sequence[AnnotatedImage], config: UidConfig
) -> dict[str, float]:
    """Mean loss terms over the validation grid crops, without touching weights or batch-norm statistics."""
    if not images:
        return {}
    sums: dict[str, float] = {}
    n_batches = 0
    weighted, n_instances = 0.0, 0
    detector.eval_losses_mode()
    try:
        with torch.no_grad():
            for batch in _batches(iter_validation_samples(images, config), config.ims_per_batch):
                losses = detector.losses([s.image for s in batch], [s.target for s in batch])
                total = float(sum(v.item() for v in losses.values()))
                for key, value in losses.items():
                    sums[f"val_{key}"] = sums.get(f"val_{key}", 0.0) + float(value.item())
                sums["val_total_loss"] = sums.get("val_total_loss", 0.0) + total
                count = sum(len(s.target["labels"]) for s in batch)
                weighted += total * count
                n_instances += count
                n_batches += 1
    finally:
        detector.train()
    out = {key: value / n_batches for key, value in sums.items()}
    out["val_instance_weighted_total_loss"] = weighted / n_instances if n_instances else float("nan")
    return out


class _MetricsLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, allow_nan=True) + "\n")


def _load_resume_state(
    output: Path, detector: MaskRCNNDetector, optimizer: torch.optim.Optimizer
) -> tuple[int, str | None]:
    """``(iteration to start at, file resumed from)`` after loading ``last_checkpoint`` (``(0, None)``
    if there is none)."""
    marker = output / LAST_CHECKPOINT
    if not marker.exists():
        return 0, None
    path = output / marker.read_text(encoding="utf-8").strip()
    if not path.exists():
        log.warning("%s names %s, which does not exist: starting from scratch", marker, path.name)
        return 0, None
    checkpoint = detector.load_weights(path)
    if "optimizer" in checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
    iteration = int(checkpoint.get("iteration", -1)) + 1
    log.info("resuming from %s at iteration %d", path.name, iteration)
    return iteration, path.name


def train(
    bundle_dir: str | Path,
    *,
    restart: bool = False,
    device: str = "cpu",
    max_iter: int | None = None,
    progress: bool = True,
    config: UidConfig | None = None,
    images: tuple[list[AnnotatedImage], list[AnnotatedImage]] | None = None,
) -> TrainResult:
    """Train the bundle's detector (see the module docstring); ``max_iter`` overrides ``MAX_ITER``. ``images``:
    ``(train, validation)`` images to use instead of the bundle's ``data/`` and its md5 split (the simulated
    annotator trains on exactly the images it labeled)."""
    started = time.perf_counter()
    bundle_dir = Path(bundle_dir)
    config = training.training_config(config or bundle_config(bundle_dir), "max_iter", max_iter, log)
    output = bundle_dir / "output"
    output.mkdir(parents=True, exist_ok=True)
    save_config(config, output / "config.yaml")

    if images is None:
        annotated, skipped = read_annotated_images(bundle_dir, config)
        train_images, val_images = split_images(annotated)
    else:
        (train_images, val_images), skipped = (list(images[0]), list(images[1])), []
    log.info("%d training and %d validation images, %d file(s) skipped", len(train_images), len(val_images),
             len(skipped))  # fmt: skip

    if config.detector != "maskrcnn":
        raise ValueError(f"DETECTOR {config.detector!r}: this trainer trains the Mask R-CNN only; train a plugged-in "
                         "detector with its own tools and put its weights in output/model_final.pth")  # fmt: skip
    torch.manual_seed(config.seed)
    detector = MaskRCNNDetector(config, device=device)
    optimizer = make_optimizer(detector, config)
    start, resumed_from = (0, None) if restart else _load_resume_state(output, detector, optimizer)
    if start == 0 and (output / FINAL_WEIGHTS).exists():
        detector.load_weights(output / FINAL_WEIGHTS)
        log.info("starting from the existing %s", FINAL_WEIGHTS)

    metrics = _MetricsLog(output / METRICS_FILE)
    result = TrainResult(
        output_dir=output,
        weights=output / FINAL_WEIGHTS,
        version="",
        start_iteration=start,
        iterations=start,
        seconds=0.0,
        n_train_images=len(train_images),
        n_validation_images=len(val_images),
        skipped=skipped,
    )
    if skipped:
        metrics.write(
            {
                "iteration": start,
                "event": "data",
                "n_train_images": len(train_images),
                "n_validation_images": len(val_images),
                "skipped_files": [{"file": file, "reason": reason} for file, reason in skipped],
            }
        )
    if start < config.max_iter:
        _run(detector, optimizer, config, train_images, val_images, output, metrics, result, start, progress)
    if start < config.max_iter or resumed_from != FINAL_WEIGHTS:  # else the final weights are already there
        detector.save(output / FINAL_WEIGHTS, iteration=max(config.max_iter, start) - 1)
        (output / LAST_CHECKPOINT).write_text(FINAL_WEIGHTS, encoding="utf-8")
    result.version = weights_version(output / FINAL_WEIGHTS)
    result.seconds = time.perf_counter() - started
    return result


def _run(
    detector: MaskRCNNDetector,
    optimizer: torch.optim.Optimizer,
    config: UidConfig,
    train_images: list[AnnotatedImage],
    val_images: list[AnnotatedImage],
    output: Path,
    metrics: _MetricsLog,
    result: TrainResult,
    start: int,
    progress: bool,
) -> None:
    stream = RandomCropStream(train_images, config, seed=config.seed * 1_000_003 + start)
    loader = torch.utils.data.DataLoader(
        stream, batch_size=config.ims_per_batch, collate_fn=collate_samples, num_workers=config.num_workers
    )
    batches = iter(loader)
    params = [p for p in detector.parameters() if p.requires_grad]
    window: dict[str, list[float]] = {}
    detector.train()
    bar = tqdm(range(start, config.max_iter), desc="uid train", disable=not progress, file=sys.stderr)
    tick = time.perf_counter()
    for iteration in bar:
        lr = config.base_lr * lr_factor(iteration, config)
        training.set_lr(optimizer, lr)
        t0 = time.perf_counter()
        batch = next(batches)
        data_time = time.perf_counter() - t0
        losses = detector.losses([s.image for s in batch], [s.target for s in batch])
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"loss became {float(total)} at iteration {iteration} "
                f"({ {k: float(v) for k, v in losses.items()} }); lower BASE_LR or set GRAD_CLIP_NORM"
            )
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if config.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip_norm)
        optimizer.step()

        values = {k: float(v.detach()) for k, v in losses.items()}
        values["total_loss"] = float(total.detach())
        values["data_time"] = data_time
        for key, value in values.items():
            window.setdefault(key, []).append(value)
        result.last_losses = {k: v for k, v in values.items() if k != "data_time"}
        result.iterations = iteration + 1
        last = iteration + 1 == config.max_iter
        if (iteration + 1) % config.printing_period == 0 or last:
            now = time.perf_counter()
            record = {"iteration": iteration, "lr": lr}
            record.update({k: float(np.mean(v)) for k, v in window.items()})
            record["time"] = (now - tick) / len(window["total_loss"])
            metrics.write(record)
            bar.set_postfix(loss=f"{record['total_loss']:.3f}", lr=f"{lr:.2g}")
            window, tick = {}, now
        if val_images and (iteration == start or (iteration + 1) % config.test_period == 0 or last):
            t_val = time.perf_counter()
            val = validation_losses(detector, val_images, config)
            tick += time.perf_counter() - t_val  # keep per-iteration times about training steps
            result.validation_losses = val
            metrics.write({"iteration": iteration, **{k: v if math.isfinite(v) else None for k, v in val.items()}})
        if (iteration + 1) % config.checkpoint_period == 0 and not last:
            name = f"model_{iteration:07d}.pth"
            detector.save(output / name, iteration=iteration, optimizer=optimizer.state_dict())
            (output / LAST_CHECKPOINT).write_text(name, encoding="utf-8")
