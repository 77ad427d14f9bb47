"""Training an ITC bundle (reference 5.7), with the original's defects fixed.

``train(bundle_dir)`` reads ``config/config.yaml`` and ``data/`` (tuboid folders + ``*.db`` annotation
databases, see :mod:`stickypi_assets.ml.itc.dataset`), trains on the training split and writes into
``<bundle>/output/``:

* ``model_final.pth`` every ``CHECKPOINT_PERIOD`` rounds **and after the last round** (the original stopped
  without saving its last rounds, defect 20), holding the weights, the config, the labels, the optimiser
  state and the number of rounds done;
* ``metrics.jsonl``: one JSON object per line: ``{"event": "validation", ...}`` before the first round, at
  every checkpoint and at the end (mean cross-entropy ``loss``, ``accuracy``, ``macro_f1`` on the validation
  tuboids with deterministic shots), and ``{"event": "train", ...}`` at the same points with the mean training
  loss of the rounds since the previous record and the learning rate;
* ``config.yaml`` (the run's full configuration) and ``dataset.json`` (the training and validation tuboids,
  their labels and md5s, and every tuboid skipped with the reason).

Schedule: one round = one batch of ``IMS_PER_BATCH`` tuboids, cross-entropy, SGD with momentum (or AdamW),
``lr = BASE_LR * GAMMA ** round``. Class imbalance: ``CLASS_BALANCE`` (weighted sampler by default, or a
weighted loss). Batches are moved to the training device (``device="cuda"`` really uses the GPU; the
original used CUDA whenever present and ignored ``--gpu``, defect 4).

Resume / restart: by default a run continues from ``model_final.pth`` (weights, optimiser, round) up to
``N_ROUNDS`` (``max_iter`` overrides it, so a finished run can be extended); round ``r`` always draws the same
batch (:class:`~stickypi_assets.ml.itc.dataset.BalancedBatchSampler`), so an interrupted and resumed run
ends with the same weights as an uninterrupted one. ``restart=True`` starts from round 0 with fresh weights
(random, or ImageNet when ``PRETRAINED``), as the original's ``--restart-training``. Weights trained with other
labels, backbone or pooling are never resumed silently: that is an error asking for ``restart``.
The checkpoint is read weights-only (:mod:`stickypi_assets.ml.checkpoints`): a bundle's file that holds a
pickled object is refused before anything in it runs.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stickypi_assets.ml import training
from stickypi_assets.ml.bundles import WEIGHTS_RELPATH
from stickypi_assets.ml.checkpoints import load_weights_file
from stickypi_assets.ml.itc.config import ItcConfig, bundle_config, save_config
from stickypi_assets.ml.itc.dataset import (
    BalancedBatchSampler,
    DatasetReport,
    ItcData,
    ShotDataset,
    bundle_data,
    class_weights,
    write_manifest,
)
from stickypi_assets.ml.itc.model import ItcNet, save_checkpoint, weights_version
from stickypi_assets.ml.itc.validate import evaluate_items, evaluation_metrics

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
DATASET_FILE = "dataset.json"
#: Keys that define the network; weights trained with other values cannot be resumed.
SHAPE_KEYS = ("LABELS", "BACKBONE", "POOLING")


@dataclass
class TrainResult:
    """What a training run did and where its outputs are."""

    output_dir: Path
    weights: Path
    version: str
    start_round: int
    rounds: int  # rounds completed in total, resumed ones included
    seconds: float
    n_train: int
    n_validation: int
    last_train_loss: float | None = None
    last_validation: dict[str, Any] = field(default_factory=dict)
    report: DatasetReport = field(default_factory=DatasetReport, repr=False)


def make_optimizer(net: nn.Module, config: ItcConfig) -> torch.optim.Optimizer:
    return training.make_optimizer(net.parameters(), config.optimizer, config.base_lr, config.lr_momentum,
                                   config.weight_decay)  # fmt: skip


def _check_resumable(checkpoint: Any, config: ItcConfig, path: Path) -> None:
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ValueError(f"{path} is not an ITC checkpoint; use restart (--restart-training) to train a new model")
    saved = checkpoint.get("config") or {}
    current = config.to_dict()
    different = [k for k in SHAPE_KEYS if saved.get(k) != current[k]]
    if different:
        raise ValueError(
            f"{path} was trained with other {', '.join(different)} than the bundle's config; "
            "use restart (--restart-training) to train a new model"
        )


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def train(
    bundle_dir: str | Path,
    restart: bool = False,
    device: str | torch.device = "cpu",
    max_iter: int | None = None,
    progress: bool = True,
    config: ItcConfig | None = None,
    *,
    data: ItcData | None = None,
    on_validation: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train the bundle's classifier (see the module docstring); ``max_iter`` overrides ``N_ROUNDS``.

    ``config`` defaults to the bundle's; ``data`` to :func:`bundle_data` of the bundle (give both to train on
    data prepared elsewhere). ``on_validation`` receives every validation record. Raises ``ValueError`` when
    there is no training tuboid.
    """
    started = time.perf_counter()
    bundle_dir = Path(bundle_dir)
    config = training.training_config(config or bundle_config(bundle_dir), "n_rounds", max_iter, log)
    device = torch.device(device)
    data = data or bundle_data(bundle_dir, config)
    output = bundle_dir / WEIGHTS_RELPATH.parent
    output.mkdir(parents=True, exist_ok=True)
    save_config(config, output / "config.yaml")
    write_manifest(data, output / DATASET_FILE)
    if not data.train:
        raise ValueError(
            f"no training tuboids in {bundle_dir / 'data'} ({len(data.validation)} validation, "
            f"{len(data.report.skipped)} skipped): nothing to train on"
        )
    log.info("ITC training: %d training / %d validation tuboids, %d skipped", len(data.train),
             len(data.validation), len(data.report.skipped))  # fmt: skip

    weights = output / WEIGHTS_RELPATH.name
    torch.manual_seed(config.seed)
    net = ItcNet.from_config(config).to(device)
    optimizer = make_optimizer(net, config)
    start = 0
    if weights.exists() and not restart:
        checkpoint = load_weights_file(weights, map_location=device)  # weights-only: a resume never runs code
        _check_resumable(checkpoint, config, weights)
        net.load_state_dict(checkpoint["model"])
        if checkpoint.get("optimizer") is not None:
            try:
                optimizer.load_state_dict(checkpoint["optimizer"])
            except (ValueError, KeyError) as exc:  # e.g. the optimiser type changed in the config
                log.warning("optimiser state not restored (%s); continuing with a fresh one", exc)
        start = int((checkpoint.get("progress") or {}).get("round", 0))
        log.info("resuming from %s at round %d", weights, start)

    result = TrainResult(
        output_dir=output, weights=weights, version="", start_round=start, rounds=start, seconds=0.0,
        n_train=len(data.train), n_validation=len(data.validation), report=data.report,
    )  # fmt: skip
    if start < config.n_rounds or not weights.exists():
        _run(net, optimizer, config, data, weights, result, start, device, progress, on_validation)
    result.version = weights_version(weights)
    result.seconds = time.perf_counter() - started
    return result


def _run(
    net: ItcNet, optimizer: torch.optim.Optimizer, config: ItcConfig, data: ItcData, weights: Path, result: TrainResult,
    start: int, device: torch.device, progress: bool, on_validation: Callable[[dict[str, Any]], None] | None,
) -> None:  # fmt: skip
    metrics_path = weights.parent / METRICS_FILE
    labels = [item.label for item in data.train]
    n_classes = data.label_map.n_classes
    loss_weight = None
    if config.class_balance == "loss":
        loss_weight = torch.tensor(class_weights(labels, n_classes, config.class_balance_power),
                                   dtype=torch.float32, device=device)  # fmt: skip
    criterion = nn.CrossEntropyLoss(weight=loss_weight)
    sampler = BalancedBatchSampler(labels, config, start, config.n_rounds)
    loader = torch.utils.data.DataLoader(
        ShotDataset(data.train, config, data.cache), batch_sampler=sampler, num_workers=config.n_workers
    )
    t_start = time.perf_counter()
    window: list[float] = []

    def write(record: dict[str, Any]) -> None:
        with open(metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(_json_safe(record)) + "\n")

    def checkpoint(round_: int, lr: float) -> None:
        nonlocal window
        save_checkpoint(net, weights, config, progress={"round": round_}, optimizer=optimizer.state_dict())
        elapsed = round(time.perf_counter() - t_start, 3)
        if window:
            result.last_train_loss = float(np.mean(window))
            write({"event": "train", "round": round_, "lr": lr, "loss": result.last_train_loss,
                   "n_rounds": len(window), "elapsed_s": elapsed})  # fmt: skip
            window = []
        validate_now(round_)

    def validate_now(round_: int) -> None:
        if not data.validation:
            return
        probabilities = evaluate_items(net, data.validation, config, device=device, cache=data.cache)
        metrics = evaluation_metrics(probabilities, [i.label for i in data.validation], n_classes)
        record = {"event": "validation", "round": round_, "loss": metrics["loss"], "accuracy": metrics["accuracy"],
                  "macro_f1": metrics["macro_f1"], "n": metrics["n"],
                  "elapsed_s": round(time.perf_counter() - t_start, 3)}  # fmt: skip
        write(record)
        result.last_validation = _json_safe(record)
        log.info("ITC validation at round %d: %s", round_, result.last_validation)
        if on_validation is not None:
            on_validation(result.last_validation)

    if not data.validation:
        log.warning("no validation tuboids: training without validation")
    validate_now(start)
    net.train()
    lr = config.base_lr * config.gamma**start
    bar = tqdm(total=config.n_rounds - start, desc="itc train", disable=not progress, file=sys.stderr)
    try:
        for r, (shots, sizes, targets) in enumerate(loader, start=start):
            lr = config.base_lr * config.gamma**r
            training.set_lr(optimizer, lr)
            logits = net(shots.to(device), sizes.to(device))
            loss = criterion(logits, targets.to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"ITC loss became {float(loss)} at round {r}; lower BASE_LR")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            window.append(float(loss.detach()))
            result.rounds = r + 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(window[-20:]):.3f}", lr=f"{lr:.2g}")
            if (r + 1) % config.checkpoint_period == 0 and r + 1 < config.n_rounds:
                checkpoint(r + 1, lr)
                net.train()
    finally:
        bar.close()
    checkpoint(result.rounds, lr)  # the last rounds are always saved (defect 20)
