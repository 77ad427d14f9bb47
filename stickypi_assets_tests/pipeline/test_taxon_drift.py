"""Drift and coverage of a device-day's predicted taxa against the model's validation, by hand-computed cases,
and the asset check that reads them from the warehouse."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from stickypi_assets.orchestration.assets.checks import taxon_drift_problems
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.pipeline.taxon_drift import taxon_drift, validation_shares
from stickypi_assets.storage.tables import CLASSIFICATIONS, MODELS
from stickypi_assets.storage.warehouse import PartitionKey

#: Validation of a model that predicted the three taxa evenly (what it predicted, not only what was true).
VALIDATION = {"per_class": [
    {"name": "Sciaridae", "support": 10, "predicted": 10, "tp": 9, "recall": 0.9, "precision": 0.9},
    {"name": "Cicadellidae", "support": 10, "predicted": 10, "tp": 9, "recall": 0.9, "precision": 0.9},
    {"name": "Muscidae", "support": 10, "predicted": 10, "tp": 10, "recall": 1.0, "precision": 1.0},
]}  # fmt: skip
FAMILY = {"Sciaridae": "Diptera", "Cicadellidae": "Hemiptera", "Muscidae": "Diptera"}


def day(counts: dict[str, int], probability: float = 0.9, **extra: int) -> pd.DataFrame:
    rows = [{"tuboid_id": f"{name}-{k}", "status": "ok", "type": "Insecta", "order": FAMILY[name], "family": name,
             "genus": None, "species": None, "pattern": f"^Insecta.*{name}", "probability": probability,
             "model_version": "v1"} for name, n in counts.items() for k in range(n)]  # fmt: skip
    rows += [{"tuboid_id": f"nc-{k}", "status": "not_classified"} for k in range(extra.get("not_classified", 0))]
    return pd.DataFrame(rows)


def test_a_day_like_the_validation_raises_nothing():
    report = taxon_drift(day({"Sciaridae": 6, "Cicadellidae": 5, "Muscidae": 5}, not_classified=3), VALIDATION)
    assert report.n == 16 and report.warnings == []
    assert report.shares == {"Sciaridae": 6 / 16, "Cicadellidae": 5 / 16, "Muscidae": 5 / 16}
    # total variation: (|6/16 - 1/3| + 2 |5/16 - 1/3|) / 2 = 1/24
    assert report.distance == pytest.approx(1 / 24)


def test_predictions_collapsing_onto_one_taxon_warn():
    report = taxon_drift(day({"Cicadellidae": 17, "Muscidae": 3}), VALIDATION)
    assert report.warnings == ["predictions collapse onto Cicadellidae: 85% of 20 tuboids (validation: 33% of its "
                               "predictions)"]  # fmt: skip
    assert report.distance == pytest.approx((1 / 3 + abs(0.85 - 1 / 3) + abs(0.15 - 1 / 3)) / 2)
    # 15 of 20 (75 %) is a dominant taxon, not a collapse
    assert taxon_drift(day({"Cicadellidae": 15, "Muscidae": 5}), VALIDATION).warnings == []
    # a handful of captures is no distribution
    assert taxon_drift(day({"Cicadellidae": 9}), VALIDATION).warnings == []


def test_low_confidence_and_a_usual_taxon_never_predicted_warn():
    report = taxon_drift(day({"Sciaridae": 10, "Muscidae": 20}, probability=0.4), VALIDATION)
    assert "Sciaridae: 10 predictions with median probability 0.40 (< 0.5)" in report.warnings
    assert "Muscidae: 20 predictions with median probability 0.40 (< 0.5)" in report.warnings
    assert "Cicadellidae is never predicted on 30 tuboids (validation: 33% of its predictions)" in report.warnings
    assert len(report.warnings) == 3


def test_without_a_known_validation_only_the_day_speaks():
    assert validation_shares(None) == {} and validation_shares({"per_class": []}) == {}
    report = taxon_drift(day({"Cicadellidae": 12}), None)
    assert report.distance is None and report.warnings == ["predictions collapse onto Cicadellidae: 100% of 12 tuboids"]
    assert taxon_drift(day({}), VALIDATION).n == 0


def test_the_asset_check_fires_when_a_device_day_collapses(tmp_path: Path):
    """Through the warehouse: the day's classifications partition and the model's row in table models."""
    storage = StickyPiStorage(store_url=str(tmp_path / "store"), warehouse_path=str(tmp_path / "wh.duckdb"),
                              published_path=str(tmp_path / "pub.duckdb"))  # fmt: skip
    warehouse = storage.warehouse()
    warehouse.replace_table(MODELS.name, pd.DataFrame([{"stage": "itc", "version": "v1",
                                                        "metrics_json": json.dumps(VALIDATION)}]))  # fmt: skip
    collapsed, usual = PartitionKey("0a1b2c3d", date(2020, 6, 20)), PartitionKey("0a1b2c3d", date(2020, 6, 21))
    warehouse.write_partition(CLASSIFICATIONS.name, collapsed, day({"Cicadellidae": 19, "Sciaridae": 1}))
    warehouse.write_partition(CLASSIFICATIONS.name, usual, day({"Sciaridae": 7, "Cicadellidae": 7, "Muscidae": 6}))
    assert taxon_drift_problems(warehouse, collapsed) == [
        "predictions collapse onto Cicadellidae: 95% of 20 tuboids (validation: 33% of its predictions)"
    ]
    assert taxon_drift_problems(warehouse, usual) == []
