"""The Insect Tuboid Classifier network (reference 5.3): a ResNet on several shots of a tuboid, pooled, + size.

For a batch of ``N`` tuboids of ``S`` shots each::

    shots (N, S, 3, H, W) ──ResNet (stem .. global average pool)──> (N, S, C)      C = 512 (18/34), 2048 (50+)
    sizes (N, S)          ──concatenate as one more feature──────────> (N, S, C + 1)
                          ──pool over the S shots (element-wise)─────> (N, C + 1)
                          ──Linear(C + 1 → n_classes)────────────────> logits

Pooling: **median by default**, a true one. A tuboid's tiles are not equally informative: the SIM sometimes
attaches a frame of a neighbouring insect, a glare or a passing shadow hides part of the insect, decay changes
it later in the window, and tile 0 (always a shot) often shows it still struggling. An element-wise median of
6 shots ignores up to 2 such outliers per feature, whereas each one moves a mean by a sixth of its
difference. The median is the *average of the two middle values* for an even shot count (``torch.median``,
which the original used, returns the lower one: a bias, and a gradient that reaches one shot per feature
instead of two). ``mean`` remains available: on clean synthetic tuboids (perfect tracks, the learning test's
data) both reached the same held-out accuracy (0.976); the median's robustness matters on real, imperfect
tracks.

Inputs are normalised RGB (see :mod:`stickypi_assets.ml.itc.inputs`) and the size is ``log2(length_px /
64)``, so ImageNet weights fit when ``PRETRAINED`` is set and random-init models see well-scaled inputs.

Checkpoints (``output/model_final.pth``) hold ``{"format", "model", "config", "labels", ...}``; the network
shape (backbone, pooling, classes) always comes from the checkpoint's own config, they are loaded with
``map_location`` (CPU-loadable whatever device saved them) and saved atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from stickypi_assets.ml.bundles import atomic_torch_save, weights_version
from stickypi_assets.ml.checkpoints import load_weights_file
from stickypi_assets.ml.itc.config import BACKBONES, POOLINGS, ItcConfig

__all__ = ["CHECKPOINT_FORMAT", "ItcNet", "load_checkpoint", "pool_shots", "save_checkpoint", "weights_version"]

#: Identifies checkpoints written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = "stickypi-itc-resnet/1"


def pool_shots(x: torch.Tensor, pooling: str) -> torch.Tensor:
    """Element-wise pooling over dim 1 (shots): ``mean``, or a true ``median`` (mean of the two middle
    values for an even count)."""
    if pooling == "mean":
        return x.mean(dim=1)
    if pooling != "median":
        raise ValueError(f"pooling {pooling!r} not in {POOLINGS}")
    n = x.shape[1]
    ordered = x.sort(dim=1).values
    if n % 2:
        return ordered[:, n // 2]
    return 0.5 * (ordered[:, n // 2 - 1] + ordered[:, n // 2])


def build_backbone(name: str, pretrained: bool = False) -> tuple[nn.Module, int]:
    """``(ResNet without its classification layer, feature size)``; ImageNet weights only if ``pretrained``."""
    if name not in BACKBONES:
        raise ValueError(f"backbone {name!r} not in {BACKBONES}")
    net = getattr(torchvision.models, name)(weights="IMAGENET1K_V1" if pretrained else None)
    dim = int(net.fc.in_features)
    net.fc = nn.Identity()
    return net, dim


class ItcNet(nn.Module):
    """ResNet per shot + size feature → pooled over shots → linear head (see the module docstring)."""

    def __init__(
        self, n_classes: int, backbone: str = "resnet50", pooling: str = "median", pretrained: bool = False
    ) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError("n_classes must be >= 1")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r} not in {POOLINGS}")
        self.backbone, self.feature_dim = build_backbone(backbone, pretrained)
        self.pooling = pooling
        self.n_classes = n_classes
        self.head = nn.Linear(self.feature_dim + 1, n_classes)

    @classmethod
    def from_config(cls, config: ItcConfig, *, pretrained: bool | None = None) -> ItcNet:
        return cls(
            n_classes=config.n_classes,
            backbone=config.backbone,
            pooling=config.pooling,
            pretrained=config.pretrained if pretrained is None else pretrained,
        )

    def forward(self, shots: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` for ``shots (N, S, 3, H, W)`` and ``sizes (N, S)``."""
        if shots.dim() != 5 or sizes.shape != shots.shape[:2]:
            raise ValueError(f"expected shots (N, S, 3, H, W) and sizes (N, S), got {tuple(shots.shape)} "
                             f"and {tuple(sizes.shape)}")  # fmt: skip
        n, s = shots.shape[:2]
        features = self.backbone(shots.flatten(0, 1)).view(n, s, self.feature_dim)
        x = torch.cat([features, sizes.unsqueeze(-1).to(features.dtype)], dim=-1)
        return self.head(pool_shots(x, self.pooling))


# -- persistence --------------------------------------------------------------------------------------------


def save_checkpoint(net: ItcNet, path: str | Path, config: ItcConfig, **extra: Any) -> Path:
    """Write ``{"format", "model", "config", "labels", **extra}`` with CPU tensors (loadable anywhere)."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "model": state,
        "config": config.to_dict(),
        "labels": config.label_map.to_config(),
    }
    payload.update(extra)
    return atomic_torch_save(payload, path)


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, expected_version: str | None = None
) -> tuple[ItcNet, ItcConfig, dict[str, Any]]:
    """``(net in eval mode, the config it was trained with, checkpoint dict)``, tensors mapped to ``device``.

    Read weights-only (:func:`~stickypi_assets.ml.checkpoints.load_weights_file`): a pickled object in the file is
    refused, never run; ``expected_version`` (a registry version) is compared with the file's md5 first.
    """
    path = Path(path)
    checkpoint = load_weights_file(path, map_location=torch.device(device), expected_version=expected_version)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an ITC checkpoint (format {CHECKPOINT_FORMAT!r} expected)")
    config = ItcConfig.from_dict(checkpoint["config"])
    net = ItcNet.from_config(config, pretrained=False)  # the weights come from the checkpoint
    net.load_state_dict(checkpoint["model"])
    return net.to(device).eval(), config, checkpoint
