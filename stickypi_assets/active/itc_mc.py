"""MC-dropout passes of the ITC and the class distribution of each of a tuboid's shots.

The ITC is a ResNet per shot, a pooling over the shots and one linear layer (:mod:`stickypi_assets.ml.itc.model`);
it has no dropout. As for the UID, dropout is applied in the forward instead of patching the model: the ResNet runs
**once** per shot, then each of ``T`` passes drops features of the pooled vector (probability ``p``) before the
linear head. That is MC dropout on the last layer, which is what the ITC can afford on CPU and what BALD needs:
passes that disagree where the head's evidence is thin.

The same head applied to each shot's own feature vector (no pooling) gives the per-shot distributions behind
:func:`~stickypi_assets.active.uncertainty.frame_disagreement`. The features are returned too: they are the
tuboid's embedding for diversity sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from stickypi_assets.active.mc_dropout import DEFAULT_DROPOUT, DEFAULT_PASSES
from stickypi_assets.active.mc_dropout import dropout as mc_dropout
from stickypi_assets.formats.tuboids import Tuboid
from stickypi_assets.ml.itc.model import pool_shots
from stickypi_assets.ml.itc.predict import ItcClassifier, tuboid_inputs


@dataclass
class TuboidPasses:
    """``mc_probs (T, N, C)``, ``shot_probs (N, S, C)``, deterministic ``probs (N, C)``, ``embeddings (N, D)``."""

    mc_probs: np.ndarray
    shot_probs: np.ndarray
    probs: np.ndarray
    embeddings: np.ndarray


@torch.inference_mode()
def sample_network(
    net, shots: torch.Tensor, sizes: torch.Tensor, *, passes: int, dropout: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mc_probs (T, N, C), shot_probs (N, S, C), probs (N, C), pooled features (N, D))`` of an ``ItcNet``."""
    net.eval()
    n, s = shots.shape[:2]
    features = net.backbone(shots.flatten(0, 1)).view(n, s, net.feature_dim)
    x = torch.cat([features, sizes.unsqueeze(-1).to(features.dtype)], dim=-1)
    pooled = pool_shots(x, net.pooling)
    probs = torch.softmax(net.head(pooled).double(), dim=-1)
    mc = torch.stack(
        [torch.softmax(net.head(mc_dropout(pooled, dropout, generator)).double(), -1) for _ in range(passes)]
    )
    shot_probs = torch.softmax(net.head(x).double(), dim=-1)
    return mc, shot_probs, probs, pooled


def sample_tuboids(
    classifier: ItcClassifier,
    tuboids: Sequence[Tuboid],
    *,
    passes: int = DEFAULT_PASSES,
    dropout: float = DEFAULT_DROPOUT,
    seed: int = 0,
    batch_size: int | None = None,
) -> TuboidPasses:
    """MC-dropout and per-shot distributions of ``tuboids`` through a trained classifier (deterministic per seed
    and batch composition; ``dropout = 0`` reproduces :meth:`ItcClassifier.probabilities` in every pass)."""
    inputs = [tuboid_inputs(t, classifier.config) for t in tuboids]
    return sample_inputs(classifier, inputs, passes=passes, dropout=dropout, seed=seed, batch_size=batch_size)


def sample_inputs(
    classifier: ItcClassifier,
    inputs: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    passes: int = DEFAULT_PASSES,
    dropout: float = DEFAULT_DROPOUT,
    seed: int = 0,
    batch_size: int | None = None,
) -> TuboidPasses:
    """:func:`sample_tuboids` on prepared inputs ``(shots (S, 3, H, W), sizes (S,))`` (as
    :func:`~stickypi_assets.ml.itc.predict.tuboid_inputs` makes them): a pool scored every round decodes once."""
    if passes < 1:
        raise ValueError("passes must be >= 1")
    batch_size = batch_size or classifier.config.inference_batch_size
    generator = torch.Generator(device=classifier.device).manual_seed(int(seed))
    n_classes, n_shots = classifier.label_map.n_classes, classifier.config.n_shots
    parts: list[tuple[np.ndarray, ...]] = [
        (np.zeros((passes, 0, n_classes)), np.zeros((0, n_shots, n_classes)), np.zeros((0, n_classes)),
         np.zeros((0, classifier.net.feature_dim + 1), np.float32))
    ]  # fmt: skip
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        shots = torch.from_numpy(np.stack([s for s, _ in batch])).to(classifier.device)
        sizes = torch.from_numpy(np.stack([z for _, z in batch])).to(classifier.device)
        out = sample_network(classifier.net, shots, sizes, passes=passes, dropout=dropout, generator=generator)
        parts.append(tuple(t.float().cpu().numpy() if i == 3 else t.cpu().numpy() for i, t in enumerate(out)))
    mc, shot, probs, emb = (np.concatenate([p[i] for p in parts], axis=1 if i == 0 else 0) for i in range(4))
    return TuboidPasses(mc_probs=mc, shot_probs=shot, probs=probs, embeddings=emb)
