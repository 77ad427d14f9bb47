"""What both MC-dropout samplers share: the dropout itself, its defaults, and per-item seeds.

Dropout is applied with an explicit ``torch.Generator`` (``F.dropout`` takes none), so a pass is reproducible for a
seed on CPU and CUDA alike, and the trained models stay untouched (no module is patched or switched to training).
"""

from __future__ import annotations

import hashlib

import torch

#: maskAL's recommended dropout probability and its compromise number of passes.
DEFAULT_DROPOUT = 0.25
DEFAULT_PASSES = 10


def seed_for(seed: int, key: str) -> int:
    """A 63-bit generator seed from the run's seed and an item key (stable across processes and orders)."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Inverted dropout of ``x`` with probability ``p``, its mask drawn from ``generator``."""
    if p <= 0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= p
    return x * keep / (1.0 - p)
