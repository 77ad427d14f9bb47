"""Drift and coverage of the ITC's predictions on a device-day, against what the model predicted on its validation.

Why: a classifier that does not transfer fails quietly. On the demo, an ITC trained on tuboids cut unlike the
platform's called 31 of 49 Sciaridae Cicadellidae and never predicted two taxa: ``daily_taxon_counts`` showed 74
Cicadellidae for 33 real ones, and nothing warned an analyst. The day's predicted taxa and confidences are
compared with the current model's validation (``per_class`` rows of its registered metrics: how often it
predicted each label there). The signals, each a one-line warning (:func:`taxon_drift`):

* **collapse**: one taxon takes at least ``COLLAPSE_SHARE`` of the day's classified tuboids while it took less than
  half of the validation predictions;
* **low confidence**: a taxon predicted at least ``MIN_LOW_CONFIDENCE`` times on the day with a median probability
  below ``LOW_CONFIDENCE``;
* **never predicted**: a taxon that took at least ``MISSING_SHARE`` of the validation predictions is not predicted
  once on a day of at least ``MIN_MISSING_TUBOIDS`` tuboids.

Days with fewer than ``MIN_TUBOIDS`` classified tuboids say nothing (a handful of captures is no distribution). The
total-variation distance between the day's and the validation's shares is reported as a figure, not a verdict.

A warning is also a reason to ask an annotator (:func:`drift_asks`, the ``drift`` sampler of the annotation queue):
the tuboids the model gave a collapsing or low-confidence taxon, least confident first, and for a taxon never
predicted the tuboids that the model found most likely to be it. Labels there are where the model is wrong or
about to be, on the data it now sees.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from stickypi_assets.formats.labels import TAXONOMY_LEVELS, deepest_level
from stickypi_assets.storage.tables import MODELS
from stickypi_assets.storage.warehouse import Warehouse, WarehouseError

MIN_TUBOIDS = 10
COLLAPSE_SHARE = 0.8
LOW_CONFIDENCE = 0.5
MIN_LOW_CONFIDENCE = 5
MISSING_SHARE = 0.15
MIN_MISSING_TUBOIDS = 30


#: The kinds of :class:`DriftSignal`, the three signals of the module docstring.
COLLAPSE, LOW_CONFIDENCE_KIND, NEVER_PREDICTED = "collapse", "low_confidence", "never_predicted"


@dataclass(frozen=True)
class DriftSignal:
    """One warning of a day: its kind, the taxon it names, the sentence shown to people."""

    kind: str
    taxon: str
    message: str


@dataclass
class TaxonDrift:
    """The day's predicted taxa against the validation's: shares, their distance, and the signals."""

    n: int
    shares: dict[str, float] = field(default_factory=dict)
    validation_shares: dict[str, float] = field(default_factory=dict)
    distance: float | None = None
    signals: list[DriftSignal] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """The signals' sentences, in the order found (asset metadata, the asset check)."""
        return [s.message for s in self.signals]


def taxon_name(row: Any) -> str:
    """Deepest taxonomy level a classification row names (the validation's ``short_name`` of its label)."""
    return deepest_level({level: getattr(row, level) for level in TAXONOMY_LEVELS}) or str(row.pattern)


def validation_shares(metrics: dict[str, Any] | None) -> dict[str, float]:
    """Share of each taxon among the validation predictions (``per_class`` rows' ``predicted``); {} when unknown."""
    rows = (metrics or {}).get("per_class") or []
    total = sum(int(r.get("predicted") or 0) for r in rows)
    return {r["name"]: int(r.get("predicted") or 0) / total for r in rows} if total else {}


def registered_validation(warehouse: Warehouse, version: str) -> dict[str, Any] | None:
    """The validation metrics the registry recorded for ITC ``version`` (table ``models``); None if unknown."""
    try:
        rows = warehouse.query(f'SELECT metrics_json FROM "{MODELS.name}" WHERE stage = ? AND version = ?',
                               ["itc", version])  # fmt: skip
    except WarehouseError:
        return None
    return json.loads(rows.metrics_json.iloc[0]) if len(rows) and rows.metrics_json.iloc[0] else None


def day_drift(warehouse: Warehouse, day: pd.DataFrame) -> TaxonDrift:
    """:func:`taxon_drift` of a day's ``classifications`` rows against the validation of the model that made them."""
    ok = day[day.status == "ok"] if len(day) else day
    version = str(ok.model_version.mode().iloc[0]) if len(ok) else None
    return taxon_drift(day, registered_validation(warehouse, version) if version else None)


def taxon_drift(day: pd.DataFrame, metrics: dict[str, Any] | None) -> TaxonDrift:
    """Signals of the module docstring for the day's ``classifications`` rows and the model's validation metrics."""
    ok = day[day.status == "ok"] if len(day) else day
    names = pd.Series([taxon_name(r) for r in ok.itertuples(index=False)], dtype=object)
    report = TaxonDrift(n=len(ok))
    if report.n == 0:
        return report
    report.shares = (names.value_counts() / report.n).to_dict()
    report.validation_shares = expected = validation_shares(metrics)
    if expected:
        taxa = set(report.shares) | set(expected)
        report.distance = 0.5 * sum(abs(report.shares.get(t, 0.0) - expected.get(t, 0.0)) for t in taxa)
    if report.n < MIN_TUBOIDS:
        return report
    top, top_share = max(report.shares.items(), key=lambda kv: (kv[1], kv[0]))
    if top_share >= COLLAPSE_SHARE and expected.get(top, 0.0) < 0.5:
        report.signals.append(DriftSignal(COLLAPSE, top, (
            f"predictions collapse onto {top}: {top_share:.0%} of {report.n} tuboids (validation: "
            f"{expected.get(top, 0.0):.0%} of its predictions)" if expected else
            f"predictions collapse onto {top}: {top_share:.0%} of {report.n} tuboids"
        )))  # fmt: skip
    probabilities = pd.Series(ok.probability.to_numpy(dtype=float), index=names.index)
    for name, p in probabilities.groupby(names.to_numpy()):
        if len(p) >= MIN_LOW_CONFIDENCE and p.median() < LOW_CONFIDENCE:
            report.signals.append(DriftSignal(LOW_CONFIDENCE_KIND, str(name), (
                f"{name}: {len(p)} predictions with median probability {p.median():.2f} (< {LOW_CONFIDENCE})")))
    if report.n >= MIN_MISSING_TUBOIDS:
        for name, share in sorted(expected.items()):
            if share >= MISSING_SHARE and name not in report.shares:
                report.signals.append(DriftSignal(NEVER_PREDICTED, name, (
                    f"{name} is never predicted on {report.n} tuboids (validation: {share:.0%} of its predictions)")))
    return report


def drift_asks(day: pd.DataFrame, report: TaxonDrift, names: Sequence[str]) -> pd.DataFrame:
    """Per classified folder of ``day`` the strongest reason ``report``'s signals give to annotate it.

    Columns ``folder_id``, ``drift`` (in [0, 1], higher asks first) and ``drift_reason``; only folders a signal
    points at. A collapsing or low-confidence taxon points at the folders predicted as it, with ``drift`` = 1 −
    their probability (the least sure first); a taxon never predicted points at every folder, with ``drift`` = the
    folder's probability of it (``probabilities`` JSON, summed over the class ids whose short name, ``names[id]``,
    is the taxon): the likeliest members of the taxon the model no longer finds. A folder several signals point at
    keeps the highest.
    """
    columns = ["folder_id", "drift", "drift_reason"]
    ok = day[day.status == "ok"] if len(day) else day
    if not report.signals or not len(ok):
        return pd.DataFrame(columns=columns)
    predicted = [taxon_name(r) for r in ok.itertuples(index=False)]
    probabilities = [json.loads(p) if isinstance(p, str) else [] for p in ok.get("probabilities", [None] * len(ok))]
    best: dict[str, tuple[float, str]] = {}
    for signal in report.signals:
        ids = [k for k, name in enumerate(names) if name == signal.taxon]
        for row, taxon, probs in zip(ok.itertuples(index=False), predicted, probabilities, strict=True):
            if signal.kind == NEVER_PREDICTED:
                score = float(sum(probs[k] for k in ids if k < len(probs)))
                why = f"{signal.message}; p({signal.taxon}) {score:.2f}"
            elif taxon == signal.taxon:
                score = 1.0 - float(row.probability)
                why = f"{signal.message}; predicted {taxon} at p {float(row.probability):.2f}"
            else:
                continue
            if score > 0 and score > best.get(row.folder_id, (-1.0, ""))[0]:
                best[row.folder_id] = (score, why)
    return pd.DataFrame([(f, s, w) for f, (s, w) in sorted(best.items())], columns=columns)
