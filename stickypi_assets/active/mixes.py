"""Sampler mixes written as text (``maskal:0.7,diversity:0.2,random:0.1``): one grammar for the CLI, the settings
and the annotation queue.

Each term is ``<sampler>:<share>[:<max per day>]``. Image samplers: ``maskal``, ``band`` (Roboflow's confidence
band around the UID's score threshold), ``empty`` (frames where the model finds nothing), ``diversity``,
``random``. Tuboid samplers: ``margin``, ``entropy``, ``bald``, ``least_confidence``, ``frame_disagreement``,
``drift`` (the folders a device-day's taxon drift warnings point at, column ``drift`` of ``tuboid_scores``; none
on a day without warnings, so its share goes to the samplers after it), ``diversity``, ``random``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from stickypi_assets.active import DEFAULT_IMAGE_MIX, DEFAULT_TUBOID_MIX
from stickypi_assets.active.samplers import (
    ConfidenceBandSampler,
    DetectionCountSampler,
    RandomSampler,
    Sampler,
    ScoreSampler,
    drift_reason,
    maskal_sampler,
)
from stickypi_assets.active.selection import MixEntry

__all__ = ["DEFAULT_IMAGE_MIX", "DEFAULT_TUBOID_MIX", "SAMPLERS", "parse_mix"]


def _coreset(seed: int, labeled: Collection[str]) -> Sampler:
    from stickypi_assets.active.diversity import CoreSetSampler  # scikit-activeml loads only when asked for

    return CoreSetSampler(labeled=frozenset(labeled), seed=seed)


_Factory = Callable[[int, Collection[str], float], Sampler]
_COMMON: dict[str, _Factory] = {
    "random": lambda seed, labeled, threshold: RandomSampler(seed=seed),
    "diversity": lambda seed, labeled, threshold: _coreset(seed, labeled),
}
SAMPLERS: dict[str, dict[str, _Factory]] = {
    "images": {
        "maskal": lambda seed, labeled, threshold: maskal_sampler(seed),
        "band": lambda seed, labeled, threshold: ConfidenceBandSampler(threshold=threshold, seed=seed),
        "empty": lambda seed, labeled, threshold: DetectionCountSampler(0, 0, seed=seed),
        **_COMMON,
    },
    "tuboids": {
        **{name: (lambda n: lambda seed, labeled, threshold: ScoreSampler(n, seed=seed))(name)
           for name in ("margin", "entropy", "bald", "least_confidence", "frame_disagreement")},
        "drift": lambda seed, labeled, threshold: ScoreSampler("drift", seed=seed, describe=drift_reason,
                                                                    optional=True),
        **_COMMON,
    },
}  # fmt: skip


def parse_mix(
    spec: str, kind: str, *, seed: int = 0, labeled: Collection[str] = (), threshold: float = 0.5
) -> list[MixEntry]:
    """The mix ``spec`` for ``kind`` (``images`` or ``tuboids``); ``ValueError`` naming what is wrong."""
    if kind not in SAMPLERS:
        raise ValueError(f"kind {kind!r} not in {sorted(SAMPLERS)}")
    entries = []
    for term in (t.strip() for t in spec.split(",")):
        parts = term.split(":")
        if not term or len(parts) not in (2, 3):
            raise ValueError(f"mix term {term!r}: expected <sampler>:<share>[:<max per day>]")
        name = parts[0].strip()
        if name not in SAMPLERS[kind]:
            raise ValueError(f"mix term {term!r}: unknown {kind} sampler {name!r} (one of {sorted(SAMPLERS[kind])})")
        try:
            share = float(parts[1])
            cap = int(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise ValueError(f"mix term {term!r}: the share is a number and the daily cap an integer") from None
        if share < 0 or (cap is not None and cap < 0):
            raise ValueError(f"mix term {term!r}: shares and caps are >= 0")
        entries.append(MixEntry(SAMPLERS[kind][name](seed, labeled, threshold), share, cap))
    if not entries or sum(e.share for e in entries) <= 0:
        raise ValueError(f"mix {spec!r}: at least one sampler with a positive share")
    return entries
