"""Drift and coverage of a device-day's predicted taxa against the model's validation, by hand-computed cases,
and the asset check that reads them from the warehouse."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stickypi_assets.active.mixes import parse_mix
from stickypi_assets.active.selection import select_batch
from stickypi_assets.orchestration.assets.checks import taxon_drift_problems
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.pipeline.taxon_drift import drift_asks, taxon_drift, validation_shares
from stickypi_assets.storage.tables import CLASSIFICATIONS, MODELS
from stickypi_assets.storage.warehouse import PartitionKey

#: Validation of a model that predicted the three taxa evenly (what it predicted, not only what was true).
VALIDATION = {"per_class": [
    {"name": "Sciaridae", "support": 10, "predicted": 10, "tp": 9, "recall": 0.9, "precision": 0.9},
    {"name": "Cicadellidae", "support": 10, "predicted": 10, "tp": 9, "recall": 0.9, "precision": 0.9},
    {"name": "Muscidae", "support": 10, "predicted": 10, "tp": 10, "recall": 1.0, "precision": 1.0},
]}  # fmt: skip
FAMILY = {"Sciaridae": "Diptera", "Cicadellidae": "Hemiptera", "Muscidae": "Diptera"}


#: Class ids of the model in these cases (its ``short_name`` of each label): the probabilities' order.
NAMES = ["Sciaridae", "Cicadellidae", "Muscidae"]


def day(counts: dict[str, int], probability: float = 0.9, **extra: int) -> pd.DataFrame:
    def probabilities(name: str) -> str:  # the label's probability, the rest shared evenly by the others
        return json.dumps([probability if n == name else (1 - probability) / 2 for n in NAMES])

    rows = [{"tuboid_id": f"{name}-{k}", "folder_id": f"{name}-{k}.0001", "status": "ok", "type": "Insecta",
             "order": FAMILY[name], "family": name, "genus": None, "species": None, "pattern": f"^Insecta.*{name}",
             "probability": probability, "probabilities": probabilities(name), "model_version": "v1"}
            for name, n in counts.items() for k in range(n)]  # fmt: skip
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


def test_warnings_point_at_the_tuboids_worth_asking_for():
    """Collapse and low confidence: the folders predicted as the taxon, least sure first (drift = 1 - p); never
    predicted: every folder, by its probability of the missing taxon; a folder keeps its strongest reason."""
    collapsed = day({"Cicadellidae": 17, "Muscidae": 3})
    collapsed.loc[collapsed.folder_id == "Cicadellidae-4.0001", "probability"] = 0.55
    report = taxon_drift(collapsed, VALIDATION)
    asks = drift_asks(collapsed, report, NAMES).set_index("folder_id")
    assert sorted(asks.index) == sorted(f"Cicadellidae-{k}.0001" for k in range(17))  # not the Muscidae
    assert asks.drift["Cicadellidae-4.0001"] == pytest.approx(0.45)
    assert asks.drift["Cicadellidae-0.0001"] == pytest.approx(0.1)
    assert asks.drift_reason["Cicadellidae-4.0001"] == (
        "predictions collapse onto Cicadellidae: 85% of 20 tuboids (validation: 33% of its predictions); "
        "predicted Cicadellidae at p 0.55"
    )
    # Sciaridae and Muscidae at 0.4 (low confidence), Cicadellidae never predicted: each Muscidae folder gives
    # Cicadellidae (1 - 0.4) / 2 = 0.3 < its own low-confidence 1 - 0.4 = 0.6, so low confidence wins there
    low = day({"Sciaridae": 10, "Muscidae": 20}, probability=0.4)
    asks = drift_asks(low, taxon_drift(low, VALIDATION), NAMES).set_index("folder_id")
    assert len(asks) == 30 and asks.drift.to_numpy() == pytest.approx(0.6)
    assert asks.drift_reason["Muscidae-0.0001"].startswith("Muscidae: 20 predictions with median probability 0.40")
    # never predicted alone: the folders by their probability of it
    missing = day({"Sciaridae": 10, "Muscidae": 20})
    report = taxon_drift(missing, VALIDATION)
    assert [s.kind for s in report.signals] == ["never_predicted"]
    asks = drift_asks(missing, report, NAMES)
    assert len(asks) == 30 and asks.drift.to_numpy() == pytest.approx(0.05)
    assert asks.drift_reason.iloc[0].endswith("; p(Cicadellidae) 0.05")
    # no warning, no ask
    usual = day({"Sciaridae": 6, "Cicadellidae": 5, "Muscidae": 5})
    assert drift_asks(usual, taxon_drift(usual, VALIDATION), NAMES).empty


def test_the_queue_drift_sampler_asks_for_them_first_and_passes_its_share_on_without_them():
    items = [f"t{k}" for k in range(10)]
    pool = pd.DataFrame({"item": items, "device": "0a1b2c3d", "datetime": pd.Timestamp("2020-06-20", tz="UTC"),
                         "margin": np.linspace(0.9, 0.0, 10), "drift": [np.nan] * 8 + [0.45, 0.2],
                         "drift_reason": [None] * 8 + ["collapse; predicted X at p 0.55", "collapse; p 0.80"]})
    mix = parse_mix("drift:0.4,margin:0.6", "tuboids")  # quotas 2 and 3
    batch = select_batch(pool, mix, 5, window=None)  # as the queue picks tuboids
    assert batch.item.tolist() == ["t8", "t9", "t0", "t1", "t2"]
    assert batch.sampler.tolist() == ["drift", "drift", "margin", "margin", "margin"]
    assert batch.reason.iloc[0] == "collapse; predicted X at p 0.55"
    # a pool without drift warnings (or without the column: scores outside the warehouse): margin takes its share
    for quiet in (pool.assign(drift=np.nan), pool.drop(columns=["drift", "drift_reason"])):
        batch = select_batch(quiet, parse_mix("drift:0.2,margin:0.8", "tuboids"), 5, window=None)
        assert batch.item.tolist() == ["t0", "t1", "t2", "t3", "t4"] and set(batch.sampler) == {"margin"}
