"""Asset checks: they pass on a consistent chain (through Dagster) and name what is missing when it is not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from stickypi_assets.ml.itc.config import ItcConfig, save_config
from stickypi_assets.ml.itc.model import ItcNet, save_checkpoint
from stickypi_assets.orchestration.assets.checks import (
    CHECKS,
    classification_problems,
    image_index_problems,
    segmentation_problems,
    tuboid_problems,
)
from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.partitions import multi_partition_key
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.raw_images import index_device_day
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.storage.tables import CLASSIFICATIONS, IMAGES, SEGMENTED_IMAGES, TUBOID_FRAMES
from stickypi_assets.storage.warehouse import PartitionKey
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.tuboids import SYNTH_LABELS
from stickypi_assets_tests.chain_helpers import IouSimModel, ground_truth_segmentations

SYNTH = SynthConfig(devices=1, days=1, seed=21, width=480, height=360, arrival_rate_day=4.0, arrival_rate_night=1.0)
DEVICE = SYNTH.device_ids[0]
DAY = SYNTH.start_date


def test_checks_pass_on_the_chain_then_name_what_is_missing(tmp_path: Path):
    store = LocalObjectStore(tmp_path / "store")
    generate(SYNTH, store)
    storage = StickyPiStorage(store_url=str(store.root), warehouse_path=str(tmp_path / "wh.duckdb"),
                              published_path=str(tmp_path / "pub.duckdb"))  # fmt: skip
    wh = storage.warehouse()
    partition = PartitionKey(DEVICE, DAY)
    index = index_device_day(store, DEVICE, DAY)
    wh.write_partition(IMAGES.name, partition, index.rows[index.rows.status == "ok"])
    ground_truth_segmentations(store, storage, DEVICE, [DAY])
    bundle = tmp_path / "itc"
    config = ItcConfig(labels=SYNTH_LABELS, backbone="resnet18", input_size=64, n_shots=4)
    save_config(config, bundle / "config" / "config.yaml")
    torch.manual_seed(0)  # the random-init weights below predict one class for every tuboid (the drift check)
    save_checkpoint(ItcNet.from_config(config), bundle / "output" / "model_final.pth", config)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [DEVICE])
    itc_model = ModelResource(stage="itc", bundle_dir=str(bundle))
    resources = {"storage": storage, "sim_model": IouSimModel(), "itc_model": itc_model}
    result = materialize([tuboids, classifications, *CHECKS], partition_key=multi_partition_key(DEVICE, DAY),
                         instance=instance, resources=resources, selection=[tuboids, classifications])  # fmt: skip
    evaluations = result.get_asset_check_evaluations()
    by_name = {e.check_name: e for e in evaluations}
    assert set(by_name) == {"tuboid_frames_reference_instances", "every_tuboid_has_one_classification",
                            "taxon_drift"}  # fmt: skip
    drift = by_name.pop("taxon_drift")
    assert all(e.passed for e in by_name.values()), [e.metadata for e in by_name.values()]
    # a random-init ITC predicts one class for everything, and is not in table models: the drift check says so
    assert drift.severity == AssetCheckSeverity.WARN and not drift.passed
    assert "predictions collapse onto" in drift.metadata["problems"].value
    assert segmentation_problems(wh, partition) == []

    # now break each stage and read what the checks say
    seg = wh.read_partition_parquet(SEGMENTED_IMAGES.name, partition)
    lost = seg.image_key.iloc[3]
    wh.write_partition(SEGMENTED_IMAGES.name, partition, pd.concat([seg.drop(index=3), seg.iloc[[0]]]))
    problems = segmentation_problems(wh, partition)
    assert f"`{lost}` has no row in segmented_images" in problems
    assert any("has 2 rows in segmented_images" in p for p in problems) and len(problems) == 2

    frames = wh.read_partition_parquet(TUBOID_FRAMES.name, partition)
    broken = frames.copy()
    broken.loc[0, "instance_id"] = "ffffffff.2020-06-20_00-00-00.0000"
    wh.write_partition(TUBOID_FRAMES.name, partition, broken.drop(index=len(broken) - 1))
    problems = tuboid_problems(wh, partition)
    assert "frame `ffffffff.2020-06-20_00-00-00.0000` is not in table instances" in problems
    assert any(f"tuboid `{frames.tuboid_id.iloc[-1]}` has" in p for p in problems)

    cls = wh.read_partition_parquet(CLASSIFICATIONS.name, partition)
    wh.write_partition(CLASSIFICATIONS.name, partition, cls.iloc[1:])
    assert classification_problems(wh, partition) == [f"tuboid `{cls.tuboid_id.iloc[0]}` has no classification row"]


def test_raw_images_check_reports_late_uploads_and_vanished_objects(tmp_path: Path):
    store = LocalObjectStore(tmp_path / "store")
    generate(SYNTH, store)
    storage = StickyPiStorage(store_url=str(store.root), warehouse_path=str(tmp_path / "wh.duckdb"),
                              published_path=str(tmp_path / "pub.duckdb"))  # fmt: skip
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [DEVICE])
    key = multi_partition_key(DEVICE, DAY)
    result = materialize([raw_images, CHECKS[0]], partition_key=key, instance=instance,
                         resources={"storage": storage})  # fmt: skip
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.metadata  # corrupt frames have their error rows: indexed too
    partition = PartitionKey(DEVICE, DAY)
    keys = sorted(i.key for i in store.list(f"raw_images/{DEVICE}/"))
    late = f"raw_images/{DEVICE}/{DEVICE}.{DAY.isoformat()}_23-59-59.jpg"  # uploaded after the day was indexed
    store.put_bytes(late, store.get_bytes(keys[0]))
    store.delete(keys[5])
    assert image_index_problems(storage.warehouse(), partition) == [
        f"`{late}` is in the store but not in table images (uploaded later? re-run the day)",
        f"`{keys[5]}` is in table images but no longer in the store",
    ]
