"""What the stages' training loops do the same way: the run's configuration, the optimiser and its learning rate.

One place for these keeps ``train --max-iter``, ``OPTIMIZER`` and the learning-rate schedule meaning the same
thing in every stage whose trainer uses them (UID, ITC; the SIM's three stages set their rate the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TypeVar

import torch

from stickypi_assets.ml.bundles import BundleConfig

_Config = TypeVar("_Config", bound=BundleConfig)


def training_config(config: _Config, length_key: str, max_iter: int | None, log: logging.Logger) -> _Config:
    """The configuration a training run uses: ``config`` with its loading warnings logged (on the trainer's
    ``log``) and, when given, ``max_iter`` (``train --max-iter``) as the stage's run length ``length_key``."""
    for warning in config.warnings:
        log.warning("config: %s", warning)
    return config if max_iter is None else config.replace(**{length_key: max_iter})


def make_optimizer(
    params: Iterable[torch.nn.Parameter], name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``OPTIMIZER`` over the trainable ``params``: ``adamw`` (decoupled weight decay, no momentum) or else SGD with
    momentum (weight decay as L2)."""
    trainable = [p for p in params if p.requires_grad]
    if name == "adamw":
        return torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The learning rate of every parameter group (the schedules compute it per round or iteration)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
