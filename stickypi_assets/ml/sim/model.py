"""The Siamese Insect Matcher network (reference 4.4) behind a small :class:`Matcher` protocol.

The tracker only needs "a score in [0, 1] for each pair of a :class:`~stickypi_assets.ml.sim.features.PairBatch`",
so it talks to a :class:`Matcher`; test doubles (an IoU matcher) and other backends plug in there.

Network (``channels`` and ``embedding_size`` default to the reference's 64/128/128/256 and 1024):

* shared branch ``f``: Conv 1→c0 k10, ReLU, MaxPool 2 → Conv c0→c1 k7, ReLU, MaxPool 2 → Conv c1→c2 k4, ReLU,
  MaxPool 2 → Conv c2→c3 k4, ReLU → flatten (c3·6·6 = 9216 at 105 px) → Linear → embedding (no activation);
* similarity ``D(u, v) = sigmoid(Linear(|f(u) - f(v)|))``; ``S = D(x0, x1)``, ``Q = D(x0, x1_a0)``;
* fusion ``H([S, Q, ar, log_d, area_0, t])``: Linear 6→4, ReLU, Linear 4→3, ReLU, Linear 3→1, sigmoid.

:class:`SiameseMatcher` caches one embedding per crop key (LRU), which is what makes tracking cost linear in
the number of instances: each instance is embedded once as ``x0``/``x1`` and once per later frame as
``x1_a0``, however many pairs it takes part in.

Checkpoints (``output/model_final.pth``) hold ``{"format", "model", "config", ...}`` and are always loaded
weights-only (:mod:`stickypi_assets.ml.checkpoints`: tensors and plain values, never code) and with
``map_location`` (the original loaded GPU-saved weights without it and failed on CPU, defect 4);
saving is atomic. The model version is the md5 of the weights file (content-addressed).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stickypi_assets.ml.bundles import atomic_torch_save, weights_version
from stickypi_assets.ml.checkpoints import load_weights_file
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.features import Matcher, PairBatch

__all__ = ["Matcher", "SiameseMatcher", "SiameseNet", "load_checkpoint", "save_checkpoint", "weights_version"]

#: Identifies checkpoints written by :func:`save_checkpoint` (bare state dicts load too).
CHECKPOINT_FORMAT = "stickypi-sim-siamese/1"


def _branch_output_side(crop_size: int) -> int:
    side = crop_size
    for kernel, pool in ((10, True), (7, True), (4, True), (4, False)):
        side = side - kernel + 1
        if pool:
            side //= 2
    return side


class SiameseNet(nn.Module):
    """The three parts of the reference network; ``forward`` returns ``(S, Q, M)`` as ``(B,)`` tensors."""

    def __init__(self, channels: list[int] | tuple[int, ...] = (64, 128, 128, 256), embedding_size: int = 1024,
                 crop_size: int = 105) -> None:
        super().__init__()
        c0, c1, c2, c3 = channels
        side = _branch_output_side(crop_size)
        if side < 1:
            raise ValueError(f"crop size {crop_size} is too small for the convolutional branch")
        self.crop_size = crop_size
        self.branch = nn.Sequential(
            nn.Conv2d(1, c0, 10), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c0, c1, 7), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 4), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(c3 * side * side, embedding_size),
        )  # fmt: skip
        self.similarity = nn.Linear(embedding_size, 1)
        self.fusion = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))

    @classmethod
    def from_config(cls, config: SimConfig) -> SiameseNet:
        return cls(channels=config.channels, embedding_size=config.embedding_size, crop_size=config.crop_size)

    def siamese_parameters(self) -> list[nn.Parameter]:
        """Branch + similarity head (stage 1)."""
        return [*self.branch.parameters(), *self.similarity.parameters()]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)`` for ``(B, 1, S, S)`` or ``(B, S, S)`` crops in [0, 1]."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.branch(x)

    def similarity_from_embeddings(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.similarity(torch.abs(u - v))).squeeze(1)

    def fuse(self, s: torch.Tensor, q: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        """``M = H([S, Q, ar, log_d, area_0, t])``; ``scalars`` is ``(B, 4)`` ``[ar, log_d, area_0, t]``."""
        x = torch.cat([s.unsqueeze(1), q.unsqueeze(1), scalars], dim=1)
        return torch.sigmoid(self.fusion(x)).squeeze(1)

    def forward(
        self, x0: torch.Tensor, x1: torch.Tensor, x1_a0: torch.Tensor, scalars: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e0, e1, e1a0 = self.embed(x0), self.embed(x1), self.embed(x1_a0)
        s = self.similarity_from_embeddings(e0, e1)
        q = self.similarity_from_embeddings(e0, e1a0)
        return s, q, self.fuse(s, q, scalars)


class SiameseMatcher:
    """:class:`Matcher` over a :class:`SiameseNet`, with an LRU of embeddings keyed by crop key.

    The cache assumes frozen weights: call :meth:`clear_cache` after changing them. ``n_embedded`` counts
    crops pushed through the branch (benchmarks and tests read it).
    """

    def __init__(self, net: SiameseNet, device: str | torch.device = "cpu", batch_size: int = 256,
                 max_cached: int = 65536) -> None:
        self.net = net.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.max_cached = max_cached
        self._cache: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.n_embedded = 0

    @classmethod
    def from_config(cls, config: SimConfig, device: str | torch.device = "cpu") -> SiameseMatcher:
        """A randomly initialised matcher (training starts here; tests use it too)."""
        return cls(SiameseNet.from_config(config), device=device, batch_size=config.inference_batch_size)

    @classmethod
    def load(
        cls, path: str | Path, config: SimConfig | None = None, device: str | torch.device = "cpu"
    ) -> SiameseMatcher:
        """Load ``model_final.pth``; the network shape comes from the checkpoint's config, else ``config``."""
        net, _ = load_checkpoint(path, config=config, device=device)
        batch = (config or SimConfig()).inference_batch_size
        return cls(net, device=device, batch_size=batch)

    def clear_cache(self) -> None:
        self._cache.clear()

    def _embed_arrays(self, crops: np.ndarray) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for start in range(0, len(crops), self.batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(crops[start : start + self.batch_size]))
                out.append(self.net.embed(chunk.to(self.device, torch.float32)))
        self.n_embedded += len(crops)
        return torch.cat(out) if out else torch.zeros((0, 1), device=self.device)

    def _embeddings_from_specs(self, batch: PairBatch) -> list[torch.Tensor]:
        assert batch.specs is not None and batch.store is not None
        wanted: dict[Hashable, Any] = {}
        for column in batch.specs:
            for spec in column:
                if spec.key not in self._cache and spec.key not in wanted:
                    wanted[spec.key] = spec
        if wanted:
            specs = list(wanted.values())
            crops = batch.store.get_many(specs).astype(np.float32) / 255.0
            emb = self._embed_arrays(crops)
            for k, spec in enumerate(specs):
                self._cache[spec.key] = emb[k]
        columns = []
        for column in batch.specs:
            rows = []
            for spec in column:
                self._cache.move_to_end(spec.key)
                rows.append(self._cache[spec.key])
            columns.append(torch.stack(rows))
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return columns

    def score_components(self, batch: PairBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(S, Q, M)`` as float64 arrays (validation reports S as well as M)."""
        n = len(batch)
        if n == 0:
            z = np.zeros(0, dtype=np.float64)
            return z, z, z
        if batch.specs is not None and batch.store is not None:
            e0, e1, e1a0 = self._embeddings_from_specs(batch)
        else:
            e0, e1, e1a0 = (self._embed_arrays(np.asarray(a, dtype=np.float32)) for a in batch.crop_arrays())
        scalars = torch.from_numpy(batch.scalars()).to(self.device)
        with torch.no_grad():
            s = self.net.similarity_from_embeddings(e0, e1)
            q = self.net.similarity_from_embeddings(e0, e1a0)
            m = self.net.fuse(s, q, scalars)
        return tuple(t.detach().cpu().double().numpy() for t in (s, q, m))  # type: ignore[return-value]

    def score_pairs(self, batch: PairBatch) -> np.ndarray:
        return self.score_components(batch)[2]


# -- persistence --------------------------------------------------------------------------------------------


def save_checkpoint(net: SiameseNet, path: str | Path, config: SimConfig | None = None, **extra: Any) -> Path:
    """Write ``{"format", "model", "config", **extra}`` with CPU tensors (loadable anywhere)."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    payload: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "model": state}
    if config is not None:
        payload["config"] = config.to_dict()
    payload.update(extra)
    return atomic_torch_save(payload, path)


def load_checkpoint(
    path: str | Path,
    config: SimConfig | None = None,
    device: str | torch.device = "cpu",
    *,
    expected_version: str | None = None,
) -> tuple[SiameseNet, dict[str, Any]]:
    """``(net, checkpoint dict)``; tensors are mapped to ``device`` whatever device saved them.

    Read weights-only (:func:`~stickypi_assets.ml.checkpoints.load_weights_file`): a pickled object in the file is
    refused, never run; ``expected_version`` (a registry version) is compared with the file's md5 first.
    """
    checkpoint = load_weights_file(path, map_location=torch.device(device), expected_version=expected_version)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: not a SIM checkpoint")
    state = checkpoint.get("model", checkpoint)
    # The network shape (channels, embedding, crop size) is the one the weights were trained with.
    shape_config = SimConfig.from_dict(checkpoint["config"]) if "config" in checkpoint else config or SimConfig()
    net = SiameseNet.from_config(shape_config)
    net.load_state_dict(state)
    return net.to(device), checkpoint
