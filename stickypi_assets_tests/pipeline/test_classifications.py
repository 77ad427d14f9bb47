"""ITC on device-days: the ``classifications`` asset after ``tuboids``, and the analysts' views on hand-made rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from stickypi_assets.ml.itc.config import ItcConfig, save_config
from stickypi_assets.ml.itc.model import ItcNet, save_checkpoint
from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.partitions import multi_partition_key
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.storage.tables import CLASSIFICATIONS, TUBOIDS
from stickypi_assets.storage.warehouse import PartitionKey
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.tuboids import SYNTH_LABELS
from stickypi_assets_tests.chain_helpers import IouSimModel, ground_truth_segmentations

SYNTH = SynthConfig(devices=1, days=1, seed=12, width=640, height=480, arrival_rate_day=4.0, arrival_rate_night=1.0)
DEVICE = SYNTH.device_ids[0]
DAY = SYNTH.start_date


@pytest.fixture
def itc_bundle(tmp_path: Path) -> Path:
    """A random-init ITC in a real bundle: the plumbing, not accuracy (``ml/itc/test_learning.py`` does that)."""
    bundle = tmp_path / "itc"
    config = ItcConfig(labels=SYNTH_LABELS, backbone="resnet18", input_size=64, n_shots=4)
    save_config(config, bundle / "config" / "config.yaml")
    save_checkpoint(ItcNet.from_config(config), bundle / "output" / "model_final.pth", config)
    return bundle


def test_classifications_after_tuboids_are_complete_and_deterministic(tmp_path: Path, itc_bundle: Path):
    store = LocalObjectStore(tmp_path / "store")
    generate(SYNTH, store)
    storage = StickyPiStorage(store_url=str(store.root), warehouse_path=str(tmp_path / "wh.duckdb"),
                              published_path=str(tmp_path / "pub.duckdb"))  # fmt: skip
    ground_truth_segmentations(store, storage, DEVICE, [DAY])
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [DEVICE])
    itc_model = ModelResource(stage="itc", bundle_dir=str(itc_bundle))
    resources = {"storage": storage, "sim_model": IouSimModel(), "itc_model": itc_model}
    key = multi_partition_key(DEVICE, DAY)
    assert materialize([tuboids, classifications], partition_key=key, instance=instance, resources=resources).success
    wh = storage.warehouse()
    first = wh.query("SELECT * FROM classifications ORDER BY tuboid_id")
    tubs = wh.query("SELECT tuboid_id, folder_key FROM tuboids ORDER BY tuboid_id")
    # one row per tuboid; the ones with a folder are classified, the others say why not
    assert first.tuboid_id.tolist() == tubs.tuboid_id.tolist() and len(first) > 5
    assert (first.status == "ok").sum() == tubs.folder_key.notna().sum() > 0
    assert set(first.status) <= {"ok", "not_classified"}
    ok = first[first.status == "ok"]
    probs = ok.probabilities.map(json.loads)
    assert all(len(p) == 7 and sum(p) == pytest.approx(1, abs=1e-4) for p in probs)
    assert all(json.loads(t)[0]["label"] == lab for t, lab in zip(ok.top_k, ok.label, strict=True))
    assert set(ok.model_version) == {itc_model.load()[2]}

    # re-running replaces the rows with identical predictions (deterministic shots), never duplicates
    assert materialize([classifications], partition_key=key, instance=instance, resources=resources).success
    again = wh.query("SELECT * FROM classifications ORDER BY tuboid_id")
    cols = ["tuboid_id", "status", "label", "probability", "probabilities"]
    pd.testing.assert_frame_equal(again[cols], first[cols])
    assert (again.run_id != first.run_id).all()
    # every insect appears once in the analysts' view
    captures = wh.query("SELECT * FROM captures", published=True)
    assert sorted(captures.tuboid_id) == sorted(tubs.tuboid_id)


def _ts(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2020, 6, day, hour, minute, tzinfo=UTC)


def test_captures_and_daily_counts_by_hand(tmp_path: Path, monkeypatch):
    """Two devices, two days; tuboid T1 spans midnight with a different label per day (the longer day wins)."""
    store = LocalObjectStore(tmp_path / "store")
    storage = StickyPiStorage(store_url=str(store.root), warehouse_path=str(tmp_path / "wh.duckdb"),
                              published_path=str(tmp_path / "pub.duckdb"))  # fmt: skip
    wh = storage.warehouse()
    d20, d21 = date(2020, 6, 20), date(2020, 6, 21)

    def tub(tid, first, last, n, area, head):
        return {"tuboid_id": tid, "track_first_seen": head, "first_seen": first, "last_seen": last, "n_frames": n,
                "median_area": area, "model_version": "sim1"}  # fmt: skip

    def cls(tid, n, label, family, p, status="ok", kind="Insecta"):
        order = "Diptera" if kind == "Insecta" else None
        return {"tuboid_id": tid, "n_frames": n, "status": status, "label": label, "type": kind,
                "order": order, "family": family, "probability": p, "model_version": "itc1"}  # fmt: skip

    wh.write_partition(TUBOIDS.name, PartitionKey("aaaaaaaa", d20), pd.DataFrame([
        tub("T1", _ts(20, 22), _ts(20, 23, 40), 6, 100.0, _ts(20, 22)),
        tub("T2", _ts(20, 8), _ts(20, 9), 4, 50.0, _ts(20, 8)),
    ]))  # fmt: skip
    wh.write_partition(TUBOIDS.name, PartitionKey("aaaaaaaa", d21), pd.DataFrame([
        tub("T1", _ts(21, 0), _ts(21, 5), 16, 300.0, _ts(20, 22)),
        tub("T3", _ts(21, 23, 50), _ts(21, 23, 59), 3, 20.0, _ts(21, 23, 50)),
    ]))  # fmt: skip
    wh.write_partition(TUBOIDS.name, PartitionKey("bbbbbbbb", d20), pd.DataFrame([
        tub("T4", _ts(20, 1), _ts(20, 2), 5, 80.0, _ts(20, 1)),
        tub("T5", _ts(20, 3), _ts(20, 9), 19, 900.0, _ts(20, 3)),  # a leaf: classified Background
    ]))  # fmt: skip
    wh.write_partition(CLASSIFICATIONS.name, PartitionKey("aaaaaaaa", d20), pd.DataFrame([
        cls("T1", 6, 1, "Muscidae", 0.6), cls("T2", 4, 0, "Sciaridae", 0.9),
    ]))  # fmt: skip
    wh.write_partition(CLASSIFICATIONS.name, PartitionKey("aaaaaaaa", d21), pd.DataFrame([
        cls("T1", 16, 0, "Sciaridae", 0.7), cls("T3", 3, None, None, None, status="not_classified"),
    ]))  # fmt: skip
    wh.write_partition(CLASSIFICATIONS.name, PartitionKey("bbbbbbbb", d20), pd.DataFrame([
        cls("T4", 5, 0, "Sciaridae", 0.8), cls("T5", 19, 9, None, 0.95, kind="Background"),
    ]))  # fmt: skip

    cap = wh.query("SELECT * FROM captures ORDER BY tuboid_id", published=True).set_index("tuboid_id")
    assert cap.index.tolist() == ["T1", "T2", "T3", "T4"]  # not T5: Background is not an insect
    t1 = cap.loc["T1"]
    assert t1.capture_time == pd.Timestamp(_ts(20, 22)) and t1.last_seen == pd.Timestamp(_ts(21, 5))
    assert t1.n_days == 2 and t1.n_frames == 22
    assert t1.taxon == "Insecta.Diptera.Sciaridae" and t1.confidence == pytest.approx(0.7)  # 16 frames beat 6
    assert t1.size_px == pytest.approx(200.0)  # median of the daily medians 100 and 300
    assert pd.isna(t1.size_mm2)  # no scale configured
    assert cap.loc["T3", "taxon"] == "unclassified" and pd.isna(cap.loc["T3", "confidence"])
    assert cap.loc["T4", "device"] == "bbbbbbbb"

    counts = wh.query('SELECT * FROM daily_taxon_counts ORDER BY device, "date", taxon', published=True)
    got = [(r.device, pd.Timestamp(r.date).date(), r.taxon, r.n_captures) for r in counts.itertuples()]
    assert got == [
        ("aaaaaaaa", d20, "Insecta.Diptera.Sciaridae", 2),  # T1 (captured 22:00 on the 20th) and T2
        ("aaaaaaaa", d21, "unclassified", 1),  # T3
        ("bbbbbbbb", d20, "Insecta.Diptera.Sciaridae", 1),
    ]

    # with a scale configured, sizes in mm² too (10 px/mm: 200 px² = 2 mm²); views are rebuilt on the next write
    monkeypatch.setenv("STICKYPI_PX_PER_MM", "10")
    scaled = StickyPiStorage(store_url=str(store.root), warehouse_path=str(tmp_path / "wh.duckdb"),
                             published_path=str(tmp_path / "pub.duckdb")).warehouse()  # fmt: skip
    scaled.publish()
    assert scaled.query("SELECT size_mm2 FROM captures WHERE tuboid_id = 'T1'")["size_mm2"][0] == pytest.approx(2.0)
    monkeypatch.setenv("STICKYPI_PX_PER_MM", "-3")
    with pytest.raises(ValueError, match="STICKYPI_PX_PER_MM"):
        StickyPiStorage().warehouse()
