"""Three-stage SIM training and validation (reference 4.5 and 4.9), with the original's defects fixed.

Stages (Adam, binary cross-entropy, one round = one batch of ``IMS_PER_BATCH`` pairs from the balanced
sampler, ``lr = base_lr * GAMMA ** r`` with ``r`` restarting at 0 and a new optimiser in each stage):

==========  ==============================  ==========  ==================  ====================
stage       trained                          loss on     rounds              lr
==========  ==============================  ==========  ==================  ====================
siamese     conv branch + similarity head    S           ``SIAM_ROUNDS``     ``SIAM_BASE_LR``
dist_ar     fusion MLP (S, Q without grad)   M           ``DIST_AR_ROUNDS``  ``DIST_AR_BASE_LR``
full        everything                       M           ``FINAL_ROUNDS``    ``FINAL_BASE_LR``
==========  ==============================  ==========  ==================  ====================

* Every ``CHECKPOINT_PERIOD`` rounds (``r % period == period - 1``) ``output/model_final.pth`` is written
  and a validation pass runs; **every stage's last rounds are saved too** (the original stopped without
  saving them, defect 20). Validation also runs at the start of each stage.
* Checkpoints record the progress (stage, round, optimiser state), so ``resume`` continues an interrupted
  run where it stopped. Resuming a *finished* run starts a new schedule from its weights (fine-tuning on
  new annotations), which is what the original's ``resume_or_load`` did; ``restart`` starts from random init.
* Batches are moved to the training device and outputs are read back with ``.cpu()`` (the original broke
  on GPUs, defect 4).
* Every validation pass appends one JSON line to ``output/metrics.jsonl``: loss and accuracy of the stage's
  output, plus accuracy, balanced accuracy and ROC AUC of both ``S`` and ``M`` (with all combinations as
  negatives, plain accuracy is dominated by easy negatives; balanced accuracy and AUC are not).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stickypi_assets.ml import training
from stickypi_assets.ml.bundles import WEIGHTS_RELPATH
from stickypi_assets.ml.sim.config import SimConfig, bundle_config
from stickypi_assets.ml.sim.dataset import BalancedSampler, PairDataset, PairSource, load_sources
from stickypi_assets.ml.sim.features import PairBatch
from stickypi_assets.ml.sim.model import (
    SiameseMatcher,
    SiameseNet,
    load_checkpoint,
    save_checkpoint,
    weights_version,
)

log = logging.getLogger(__name__)

STAGES = ("siamese", "dist_ar", "full")
METRICS_JSONL = "metrics.jsonl"


# ------------------------------------------------------------------------------------------------ metrics


def roc_auc(scores: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve by the rank (Mann-Whitney) formula; ties get their average rank.

    ``AUC = (sum of positive ranks - P (P + 1) / 2) / (P N)``: the probability that a random positive
    scores above a random negative, ties counting one half. ``nan`` when a class is absent.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # Average ranks (1-based) over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(s)]])
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + 1 + b) / 2.0
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_metrics(pred: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, recall (TP/(TP+FN)), specificity (TN/(TN+FP)), their mean, AUC and BCE loss."""
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    hit = pred >= threshold
    tp, tn = int((hit & y).sum()), int((~hit & ~y).sum())
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    recall = tp / n_pos if n_pos else float("nan")
    specificity = tn / n_neg if n_neg else float("nan")
    p = np.clip(pred, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(np.where(y, np.log(p), np.log(1 - p)))) if len(p) else float("nan")
    return {
        "loss": loss,
        "accuracy": (tp + tn) / len(pred) if len(pred) else float("nan"),
        "recall": recall,
        "specificity": specificity,
        "balanced_accuracy": float(np.nanmean([recall, specificity])) if len(pred) else float("nan"),
        "auc": roc_auc(pred, y),
        "n_pos": n_pos,
        "n_neg": n_neg,
    }


def evaluate(net: SiameseNet, dataset: PairDataset, device: str | torch.device = "cpu",
             batch_size: int = 256, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(s, q, m, labels)`` of every pair of ``dataset`` in the fixed validation order, no augmentation.

    Runs through a fresh :class:`SiameseMatcher`, so each crop is embedded once per pass however many
    pairs it is in (the weights change between passes, so nothing is cached across them). Pairs are
    scored ``batch_size`` at a time; ``progress`` shows a progress bar (one step per pair) on stderr.
    """
    records = dataset.validation_records()
    if not records:
        z = np.zeros(0)
        return z, z, z, z
    was_training = net.training
    matcher = SiameseMatcher(net, device=device, batch_size=batch_size)
    parts: list[tuple[np.ndarray, ...]] = []
    with tqdm(total=len(records), desc="sim validate", unit="pair", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(records), batch_size):
            batch, labels = dataset.spec_batch(records[start : start + batch_size])
            parts.append((*matcher.score_components(batch), labels))
            bar.update(len(labels))
    net.train(was_training)
    s, q, m, labels = (np.concatenate(column) for column in zip(*parts, strict=True))
    return s, q, m, labels


# ------------------------------------------------------------------------------------------------ training


@dataclass
class TrainResult:
    weights: Path
    version: str
    rounds: dict[str, int]
    last_validation: dict[str, Any] = field(default_factory=dict)


def _to_tensors(batch: PairBatch, device: torch.device) -> tuple[torch.Tensor, ...]:
    x0, x1, x1a0 = (torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(1).to(device) for a in batch.crop_arrays())
    scalars = torch.from_numpy(batch.scalars()).to(device)
    return x0, x1, x1a0, scalars


def _stage_step(
    net: SiameseNet, stage: str, batch: PairBatch, labels: np.ndarray, device: torch.device
) -> torch.Tensor:
    x0, x1, x1a0, scalars = _to_tensors(batch, device)
    y = torch.from_numpy(labels).to(device)
    bce = nn.functional.binary_cross_entropy
    if stage == "siamese":
        s = net.similarity_from_embeddings(net.embed(x0), net.embed(x1))
        return bce(s, y)
    if stage == "dist_ar":
        with torch.no_grad():
            e0 = net.embed(x0)
            s = net.similarity_from_embeddings(e0, net.embed(x1))
            q = net.similarity_from_embeddings(e0, net.embed(x1a0))
        return bce(net.fuse(s, q, scalars), y)
    _, _, m = net(x0, x1, x1a0, scalars)
    return bce(m, y)


def _stage_params(net: SiameseNet, stage: str) -> list[nn.Parameter]:
    if stage == "siamese":
        return net.siamese_parameters()
    if stage == "dist_ar":
        return list(net.fusion.parameters())
    return list(net.parameters())


def _stage_schedule(config: SimConfig, stage: str) -> tuple[int, float]:
    return {
        "siamese": (config.siam_rounds, config.siam_base_lr),
        "dist_ar": (config.dist_ar_rounds, config.dist_ar_base_lr),
        "full": (config.final_rounds, config.final_base_lr),
    }[stage]


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


def train(
    bundle_dir: str | Path,
    *,
    config: SimConfig | None = None,
    sources: Sequence[PairSource] | None = None,
    restart: bool = False,
    device: str | torch.device = "cpu",
    on_validation: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train the bundle's model on its ``data/`` SiamSVGs (or on ``sources``) and save ``output/model_final.pth``.

    ``config`` defaults to the bundle's; ``restart`` ignores existing weights. ``on_validation`` receives
    each metrics record (also appended to ``output/metrics.jsonl``). ``progress`` shows a progress bar per
    stage (one step per round) on stderr.
    """
    bundle_dir = Path(bundle_dir)
    config = config or bundle_config(bundle_dir)
    device = torch.device(device)
    if sources is None:
        sources = load_sources(bundle_dir / "data")
    train_set = PairDataset(sources, "train", crop_size=config.crop_size)
    val_set = PairDataset(sources, "validation", crop_size=config.crop_size)
    log.info("SIM training: %d positives / %d negatives; validation %d / %d", len(train_set.positives),
             len(train_set.negatives), len(val_set.positives), len(val_set.negatives))
    train_set.warm()
    val_set.warm()
    sampler_rng = np.random.default_rng(config.seed)
    sampler = BalancedSampler(train_set, sampler_rng)

    weights = bundle_dir / WEIGHTS_RELPATH
    metrics_path = weights.parent / METRICS_JSONL
    weights.parent.mkdir(parents=True, exist_ok=True)
    start_stage, start_round, optimizer_state = 0, 0, None
    if weights.exists() and not restart:
        net, checkpoint = load_checkpoint(weights, config=config, device=device)
        resumed = checkpoint.get("progress") or {}
        if resumed.get("stage") in STAGES:  # interrupted run: continue it
            start_stage = STAGES.index(resumed["stage"])
            start_round = int(resumed.get("round", 0))
            optimizer_state = checkpoint.get("optimizer")
        log.info("resuming from %s at stage %s round %d", weights, STAGES[start_stage], start_round)
    else:
        torch.manual_seed(config.seed)
        net = SiameseNet.from_config(config).to(device)
    net.train()

    t_start = time.perf_counter()
    last: dict[str, Any] = {}
    rounds_done = {stage: 0 for stage in STAGES}

    def validate_now(stage: str, round_: int, lr: float, train_losses: list[float]) -> None:
        nonlocal last
        s, _, m, labels = evaluate(net, val_set, device=device, batch_size=config.inference_batch_size)
        ms, mm = binary_metrics(s, labels), binary_metrics(m, labels)
        main = ms if stage == "siamese" else mm
        record = {
            "event": "validation", "stage": stage, "round": round_, "lr": lr,
            "loss": main["loss"], "accuracy": main["accuracy"], "balanced_accuracy": main["balanced_accuracy"],
            "auc": main["auc"],
            "s_accuracy": ms["accuracy"], "s_balanced_accuracy": ms["balanced_accuracy"], "s_auc": ms["auc"],
            "m_accuracy": mm["accuracy"], "m_balanced_accuracy": mm["balanced_accuracy"], "m_auc": mm["auc"],
            "m_recall": mm["recall"], "m_specificity": mm["specificity"],
            "n_pos": mm["n_pos"], "n_neg": mm["n_neg"],
            "train_loss": float(np.mean(train_losses)) if train_losses else None,
            "elapsed_s": round(time.perf_counter() - t_start, 3),
        }  # fmt: skip
        record = _json_safe(record)
        with open(metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        last = record
        log.info("validation %s", record)
        if on_validation is not None:
            on_validation(record)

    def save(stage: str | None, round_: int, optimizer: torch.optim.Optimizer | None) -> None:
        position = {"stage": stage, "round": round_} if stage else {"stage": "done"}
        save_checkpoint(net, weights, config, progress=position,
                        optimizer=optimizer.state_dict() if optimizer is not None else None)

    for si in range(start_stage, len(STAGES)):
        stage = STAGES[si]
        n_rounds, base_lr = _stage_schedule(config, stage)
        first = start_round if si == start_stage else 0
        if first >= n_rounds:
            continue
        for p in net.parameters():
            p.requires_grad_(False)
        params = _stage_params(net, stage)
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(params, lr=base_lr)
        if optimizer_state is not None and si == start_stage:
            try:
                optimizer.load_state_dict(optimizer_state)
            except (ValueError, KeyError) as exc:
                log.warning("optimizer state not restored (%s); continuing with a fresh one", exc)
        rng = np.random.default_rng([config.seed, si, first])
        validate_now(stage, first, base_lr * config.gamma**first, [])
        losses: list[float] = []
        lr = base_lr
        validated_at = first
        bar = tqdm(range(first, n_rounds), desc=f"sim train {stage}", unit="round", disable=not progress,
                   file=sys.stderr)
        for r in bar:
            lr = base_lr * config.gamma**r
            training.set_lr(optimizer, lr)
            batch, labels = train_set.training_batch(sampler.sample(config.ims_per_batch), rng)
            optimizer.zero_grad(set_to_none=True)
            loss = _stage_step(net, stage, batch, labels, device)
            loss.backward()
            optimizer.step()
            step_loss = float(loss.detach().cpu())
            losses.append(step_loss)
            rounds_done[stage] += 1
            if r % config.checkpoint_period == config.checkpoint_period - 1:
                save(stage, r + 1, optimizer)
                validate_now(stage, r + 1, lr, losses)
                validated_at = r + 1
                losses = []
            val_loss = last.get("loss")
            bar.set_postfix(loss=f"{step_loss:.3f}", lr=f"{lr:.2g}",
                            val_loss="-" if val_loss is None else f"{val_loss:.3f}", refresh=False)
        bar.close()
        # The last rounds of a stage are always kept (defect 20), and recorded as the next stage's start.
        next_stage = STAGES[si + 1] if si + 1 < len(STAGES) else None
        save(next_stage, 0, None)
        if validated_at != n_rounds:
            validate_now(stage, n_rounds, lr, losses)
    for p in net.parameters():
        p.requires_grad_(True)
    save(None, 0, None)
    version = weights_version(weights)
    return TrainResult(weights=weights, version=version, rounds=rounds_done, last_validation=last)


# ---------------------------------------------------------------------------------------------- validation


def validate(
    bundle_dir: str | Path,
    target: str | Path,
    *,
    config: SimConfig | None = None,
    sources: Sequence[PairSource] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Score every validation pair with the bundle's weights; write ``results.json`` and ``metrics.json``.

    ``results.json`` is the original's list of ``{"pred": score, "gt": 0.0 | 1.0}`` (fixed order, all
    negatives included); ``metrics.json`` holds AUC, accuracy, recall, specificity, balanced accuracy and
    loss of M (and of S under ``s_*``), the pair counts and the model version. Returns the metrics.
    ``progress`` shows a progress bar (one step per pair) on stderr.
    """
    bundle_dir, target = Path(bundle_dir), Path(target)
    config = config or bundle_config(bundle_dir)
    weights = bundle_dir / WEIGHTS_RELPATH
    if not weights.exists():
        raise FileNotFoundError(f"{weights} not found: train the SIM bundle first")
    net, _ = load_checkpoint(weights, config=config, device=device)
    if sources is None:
        sources = load_sources(bundle_dir / "data")
    val_set = PairDataset(sources, "validation", crop_size=net.crop_size)
    s, _, m, labels = evaluate(net, val_set, device=device, batch_size=config.inference_batch_size,
                               progress=progress)
    target.mkdir(parents=True, exist_ok=True)
    results = [{"pred": float(p), "gt": float(g)} for p, g in zip(m, labels, strict=True)]
    (target / "results.json").write_text(json.dumps(results), encoding="utf-8")
    metrics = binary_metrics(m, labels)
    metrics.update({f"s_{k}": v for k, v in binary_metrics(s, labels).items() if k not in ("n_pos", "n_neg")})
    metrics["model_version"] = weights_version(weights)
    metrics = _json_safe(metrics)
    (target / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    log.info("SIM validation: %s", metrics)
    return metrics


def validation_metrics(bundle_dir: str | Path, out_dir: str | Path, *, device: str = "cpu") -> dict[str, Any]:
    """The stage table's validator: :func:`validate`'s metrics (``auc``, the figure promotion compares, …)."""
    return validate(bundle_dir, out_dir, device=device)
