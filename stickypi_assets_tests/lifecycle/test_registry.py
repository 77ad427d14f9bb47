"""Model registry: versions by weight hash, promotion only when not worse, table models, and re-runs after a change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from dagster import DagsterInstance, materialize

from stickypi_assets.lifecycle.promotion import current_on_same_data, is_not_worse, lost_classes
from stickypi_assets.lifecycle.registry import ModelRegistry
from stickypi_assets.ml.bundles import WEIGHTS_RELPATH, weights_version
from stickypi_assets.ml.itc.config import ItcConfig, save_config
from stickypi_assets.ml.itc.model import ItcNet, save_checkpoint
from stickypi_assets.ml.itc.predict import load_classifier
from stickypi_assets.ml.stages import STAGES
from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.partitions import multi_partition_key
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.settings import Settings
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.storage.tables import MODELS
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.tuboids import SYNTH_LABELS, write_synth_tuboids
from stickypi_assets_tests.chain_helpers import IouSimModel, ground_truth_segmentations

CONFIG = ItcConfig(labels=SYNTH_LABELS, backbone="resnet18", input_size=64, n_shots=4)


def itc_bundle(root: Path, seed: int) -> Path:
    """A bundle with random ITC weights (the seed makes each one a different version)."""
    torch.manual_seed(seed)
    save_config(CONFIG, root / "config" / "config.yaml")
    save_checkpoint(ItcNet.from_config(CONFIG), root / WEIGHTS_RELPATH, CONFIG)
    return root


def test_promotion_rule():
    assert is_not_worse(0.8, None) and is_not_worse(0.8, 0.8) and is_not_worse(0.9, 0.8)
    assert not is_not_worse(0.79, 0.8) and is_not_worse(0.75, 0.8, tolerance=0.05)
    assert not is_not_worse(None, 0.8) and is_not_worse(None, None)


def _validation(cm: list[list[int]], names=("Sciaridae", "Muscidae", "Culicidae")) -> dict:
    """Metrics as the ITC validator reports them, from a confusion matrix (rows: true class)."""
    from stickypi_assets.ml.itc.validate import per_class_metrics, summary_metrics

    rows = [r | {"name": names[r["label"]]} for r in per_class_metrics(np.array(cm))]
    return summary_metrics(np.array(cm)) | {"per_class": rows}


def test_lost_classes_by_hand():
    current = _validation([[2, 3, 0], [0, 5, 0], [0, 3, 2]])  # recalls 0.4, 1.0, 0.4
    candidate = _validation([[5, 0, 0], [0, 5, 0], [0, 5, 0]])  # recalls 1.0, 1.0, 0.0
    assert lost_classes(candidate, current) == ["Culicidae"]
    assert lost_classes(current, candidate) == []  # finding more is never a loss
    assert lost_classes(candidate, None) == [] and lost_classes({}, current) == []
    never_found = _validation([[5, 0, 0], [0, 5, 0], [5, 0, 0]])  # neither finds Culicidae: nothing lost
    assert lost_classes(never_found, candidate) == []
    uid_shaped = {"per_class": {"insect": {"precision": 0.9, "recall": 0.8}}}  # another validator's shape: no rows
    assert lost_classes(uid_shaped, current) == [] and lost_classes(candidate, uid_shaped) == []


def test_a_retrained_itc_that_loses_a_taxon_is_not_promoted(tmp_path: Path):
    """A higher macro recall does not buy a lost taxon: the candidate stays a candidate, and the decision says why."""
    registry = ModelRegistry(LocalObjectStore(tmp_path / "store"), tmp_path / "cache")
    current = _validation([[2, 3, 0], [0, 5, 0], [0, 3, 2]])
    old, _ = registry.register("itc", itc_bundle(tmp_path / "old", seed=1), current, [])
    candidate = _validation([[5, 0, 0], [0, 5, 0], [0, 5, 0]])
    assert candidate["macro_recall"] == pytest.approx(2 / 3) and current["macro_recall"] == pytest.approx(0.6)
    record, promoted = registry.register("itc", itc_bundle(tmp_path / "new", seed=2), candidate, [],
                                         current_metric=current["macro_recall"], current_metrics=current)
    assert not promoted and registry.current_version("itc") == old.version
    assert "never finds Culicidae, which the current version finds" in record.decision
    better = _validation([[4, 1, 0], [0, 5, 0], [0, 2, 3]])  # finds every taxon the current one finds
    _, promoted = registry.register("itc", itc_bundle(tmp_path / "better", seed=3), better, [],
                                    current_metric=current["macro_recall"], current_metrics=current)
    assert promoted


def test_versions_promotion_table_and_fetch(tmp_path: Path, monkeypatch):
    storage = StickyPiStorage(store_url=str(tmp_path / "store"), warehouse_path=str(tmp_path / "wh.duckdb"),
                              published_path=str(tmp_path / "pub.duckdb"))  # fmt: skip
    registry = ModelRegistry(storage.object_store(), tmp_path / "cache")
    manifest = [{"key": "annotations/itc/database.db", "md5": "0" * 32, "size": 1}]
    v = {}
    for n, accuracy in enumerate((0.5, 0.4, 0.5, 0.45)):
        bundle = itc_bundle(tmp_path / f"b{n}", seed=n)
        v[n] = weights_version(bundle / WEIGHTS_RELPATH)
        record, promoted = registry.register("itc", bundle, {"macro_recall": accuracy}, manifest,
                                             tolerance=0.1 if n == 3 else 0.0)  # fmt: skip
        assert record.version == v[n]
        assert promoted == (n != 1), record.decision
        if n == 1:  # worse: registered, not current
            assert registry.current_version("itc") == v[0] and "kept as a candidate" in record.decision
    assert registry.current_version("itc") == v[3]  # 0.45 within 0.1 of 0.5
    # registering the current weights again changes nothing
    assert registry.register("itc", tmp_path / "b3", {"macro_recall": 0.0}, manifest)[1] is False

    rows = registry.table_rows()
    assert sorted(rows.version) == sorted(v.values()) and rows.is_current.sum() == 1
    assert rows.set_index("version").loc[v[1], "metric_value"] == pytest.approx(0.4)
    wh = storage.warehouse()
    wh.replace_table(MODELS.name, rows)
    wh.replace_table(MODELS.name, rows)  # replaced, not appended
    got = wh.query("SELECT version, is_current FROM models WHERE stage = 'itc'", published=True)
    assert len(got) == 4 and got.set_index("version").is_current[v[3]]

    local = registry.fetch("itc")
    assert weights_version(local / WEIGHTS_RELPATH) == v[3]
    assert load_classifier(local)[2] == v[3]
    registry.promote("itc", v[0])  # manual rollback
    assert weights_version(registry.fetch("itc") / WEIGHTS_RELPATH) == v[0]
    with pytest.raises(ValueError, match="not registered"):
        registry.promote("itc", "f" * 32)
    monkeypatch.setenv("STICKYPI_PROMOTION_TOLERANCE", "-1")
    with pytest.raises(ValueError, match="STICKYPI_PROMOTION_TOLERANCE"):
        Settings.from_env()


def test_the_current_version_is_judged_again_on_the_candidates_validation_data(tmp_path: Path):
    """New annotations change the validation split: promotion compares both models on the same data."""
    synth = LocalObjectStore(tmp_path / "synth")
    generate(SynthConfig(devices=1, days=1, seed=9, width=480, height=360, arrival_rate_day=8, interval_s=3600), synth)
    data = tmp_path / "candidate" / "data"
    assert write_synth_tuboids(synth, data).written
    registry = ModelRegistry(LocalObjectStore(tmp_path / "store"), tmp_path / "cache")
    # the current version scored 0.99 on the annotations it was validated on back then
    old, _ = registry.register("itc", itc_bundle(tmp_path / "old", seed=1), {"macro_recall": 0.99}, [])

    current, note = current_on_same_data("itc", registry, data, tmp_path / "work", "cpu")
    value = current["macro_recall"]
    by_hand = tmp_path / "by_hand"  # the current weights and config with the candidate's data, built by hand
    itc_bundle(by_hand, seed=1)
    (by_hand / "data").symlink_to(data)
    assert value == pytest.approx(STAGES["itc"].validate(by_hand, tmp_path / "v")["macro_recall"])
    assert value < 0.99 and "same" in note  # random weights on new data: far from the recorded figure

    candidate = itc_bundle(tmp_path / "candidate", seed=2)
    record, promoted = registry.register("itc", candidate, {"macro_recall": value}, [], current_metric=value, note=note)
    assert promoted, record.decision  # as good as the current one on the same data (0.99 would have refused it)
    assert f"vs current {old.version[:8]} {value}" in record.decision

    registry.promote("itc", old.version)  # a current version that no longer loads: fall back to its record
    (tmp_path / "cache" / "insect-tuboid-classifier" / old.version / "config" / "config.yaml").write_text("{]")
    current, note = current_on_same_data("itc", registry, data, tmp_path / "work2", "cpu")
    assert current is None and "not re-validated" in note


def test_partition_rerun_after_a_model_change_replaces_its_rows(tmp_path: Path):
    config = SynthConfig(devices=1, days=1, seed=8, width=480, height=360, arrival_rate_day=4.0)
    device, day = config.device_ids[0], config.start_date
    store = LocalObjectStore(tmp_path / "store")
    generate(config, store)
    storage = StickyPiStorage(store_url=str(store.root), warehouse_path=str(tmp_path / "wh.duckdb"),
                              published_path=str(tmp_path / "pub.duckdb"))  # fmt: skip
    ground_truth_segmentations(store, storage, device, [day])
    registry = storage.registry()
    registry.register("itc", itc_bundle(tmp_path / "old", seed=1), {"macro_recall": 0.5}, [])
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [device])
    # the resource follows the registry's current version (no bundle_dir given)
    itc_model = ModelResource(stage="itc", store_url=str(store.root))
    resources = {"storage": storage, "sim_model": IouSimModel(), "itc_model": itc_model}
    key = multi_partition_key(device, day)
    assert materialize([tuboids, classifications], partition_key=key, instance=instance, resources=resources).success
    wh = storage.warehouse()
    before = wh.query("SELECT tuboid_id, model_version FROM classifications ORDER BY tuboid_id")
    old = registry.current_version("itc")
    assert set(before.model_version) == {old}

    record, promoted = registry.register("itc", itc_bundle(tmp_path / "new", seed=2), {"macro_recall": 0.7}, [])
    assert promoted and record.version != old
    assert materialize([classifications], partition_key=key, instance=instance, resources=resources).success
    after = wh.query("SELECT tuboid_id, model_version FROM classifications ORDER BY tuboid_id")
    assert after.tuboid_id.tolist() == before.tuboid_id.tolist()  # same rows, replaced
    assert set(after.model_version) == {record.version}
