"""A batch to annotate: a budget shared by a mix of samplers, with caps per day and one frame per time window.

``select_batch(pool, [(maskal, 0.7), (diversity, 0.2), (random, 0.1)], budget=20)`` gives each sampler its share
of the budget (largest remainders, so the quotas sum to the budget), then lets each, in the order given, take its
best eligible items. An item is skipped when it is

* excluded (already annotated or already queued: a batch never holds either),
* already in the batch (picked by an earlier sampler),
* within ``window`` of an item of the same device already in the batch (a card changes little in 20 minutes:
  twenty consecutive frames teach what one does), unless ``window`` is ``None``,
* over its sampler's ``max_per_day`` for that calendar day (Roboflow's caps).

A sampler that runs out of eligible items leaves its quota to the following ones; a second round then fills what is
left from every sampler in order. Samplers see the items chosen so far (diversity moves away from them). The result
is deterministic for the samplers' seeds, whatever the pool's row order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from stickypi_assets.active.samplers import Sampler

BATCH_COLUMNS = ["item", "device", "datetime", "score", "sampler", "reason"]
DEFAULT_WINDOW = timedelta(hours=2)


@dataclass(frozen=True)
class MixEntry:
    """One sampler of a mix: its share of the budget and an optional cap of items per calendar day."""

    sampler: Sampler
    share: float
    max_per_day: int | None = None


def quotas(shares: Sequence[float], budget: int) -> list[int]:
    """Integer quotas proportional to ``shares`` summing to ``budget`` (largest remainders; ties: earlier first)."""
    shares = np.asarray(shares, dtype=np.float64)
    if budget < 0 or (shares < 0).any() or shares.sum() <= 0:
        raise ValueError("budget must be >= 0 and shares non-negative with a positive sum")
    exact = shares / shares.sum() * budget
    out = np.floor(exact).astype(int)
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: budget - int(out.sum())]:
        out[i] += 1
    return out.tolist()


def _as_entries(mix: Sequence[MixEntry | tuple]) -> list[MixEntry]:
    return [m if isinstance(m, MixEntry) else MixEntry(*m) for m in mix]


def select_batch(
    pool: pd.DataFrame,
    mix: Sequence[MixEntry | tuple],
    budget: int,
    *,
    exclude: Collection[str] = (),
    window: timedelta | None = DEFAULT_WINDOW,
) -> pd.DataFrame:
    """The next batch (columns :data:`BATCH_COLUMNS`, in pick order) from ``pool`` (see the module docstring)."""
    entries = _as_entries(mix)
    if not entries:
        raise ValueError("the mix needs at least one sampler")
    for column in ("item", "device", "datetime"):
        if column not in pool.columns:
            raise ValueError(f"the pool needs column {column!r}")
    if pool["item"].duplicated().any():
        dupes = pool.loc[pool["item"].duplicated(), "item"].head(3).tolist()
        raise ValueError(f"pool items must be unique; repeated: {dupes}")
    info = pool.set_index(pool["item"].astype(str))[["device", "datetime"]]
    when = pd.to_datetime(info["datetime"], utc=True)
    excluded = set(map(str, exclude))
    chosen: list[dict] = []
    taken: set[str] = set()
    per_device: dict[str, list[pd.Timestamp]] = defaultdict(list)
    per_day: dict[tuple[int, object], int] = defaultdict(int)

    def fits(item: str, k: int) -> bool:
        if item in excluded or item in taken or item not in info.index:
            return False
        device, t = info.at[item, "device"], when[item]
        if window is not None and any(abs(t - u) < window for u in per_device[device]):
            return False
        cap = entries[k].max_per_day
        return cap is None or per_day[(k, t.date())] < cap

    def take(k: int, n: int) -> int:
        if n <= 0:
            return 0
        ranking = entries[k].sampler.rank(pool, [c["item"] for c in chosen])
        got = 0
        for row in ranking.itertuples(index=False):
            if got == n:
                break
            item = str(row.item)
            if not fits(item, k):
                continue
            t = when[item]
            chosen.append({"item": item, "device": info.at[item, "device"], "datetime": t, "score": float(row.score),
                           "sampler": row.sampler, "reason": row.reason})  # fmt: skip
            taken.add(item)
            per_device[info.at[item, "device"]].append(t)
            per_day[(k, t.date())] += 1
            got += 1
        return got

    budget = min(int(budget), len(pool))
    carry = 0
    for k, quota in enumerate(quotas([e.share for e in entries], budget)):
        want = quota + carry
        carry = want - take(k, want)
    for k in range(len(entries)):
        if len(chosen) >= budget:
            break
        take(k, budget - len(chosen))
    return pd.DataFrame(chosen, columns=BATCH_COLUMNS)
