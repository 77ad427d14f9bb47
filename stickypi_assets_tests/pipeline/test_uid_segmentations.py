"""UID on a device-day: the pure core with a deterministic detector, and the Dagster asset end to end."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from shapely import wkt

from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.uid.config import UidConfig, save_config
from stickypi_assets.ml.uid.model import MaskRCNNDetector
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.assets.uid_segmentations import uid_segmentations
from stickypi_assets.orchestration.partitions import multi_partition_key
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.raw_images import index_device_day
from stickypi_assets.pipeline.uid_segmentations import DayFailed, segment_device_day
from stickypi_assets.storage.keys import uid_annotation_day_prefix
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets_tests.ml.uid.helpers import BlobDetector

SYNTH = SynthConfig(devices=1, days=1, seed=5, width=320, height=240, corrupt_frames=1, arrival_rate_day=40.0)
DEVICE = SYNTH.device_ids[0]
DAY = SYNTH.start_date


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path_factory.mktemp("store"))
    generate(SYNTH, store)
    # keep the test quick: the first 8 frames of the day (+ the corrupt one wherever it is)
    keys = sorted(i.key for i in store.list(f"raw_images/{DEVICE}/"))
    truth = pd.read_parquet(store.local_path("ground_truth/images.parquet"))
    corrupt = set(truth.loc[truth.status == "corrupt", "key"])
    for key in keys[8:]:
        if key not in corrupt:
            store.delete(key)
    return store


def test_core_segments_every_usable_image_and_records_the_rest(store: LocalObjectStore):
    images = index_device_day(store, DEVICE, DAY).rows
    # an image deleted after indexing makes its inference fail: recorded, the day goes on
    gone = images.loc[images.status == "ok", "object_key"].iloc[0]
    data = store.get_bytes(gone)
    store.delete(gone)
    try:
        config = UidConfig(score_threshold=0.5, tile_size=256, tile_overlap=64, original_image_padding=16)
        day = segment_device_day(store, images, BlobDetector(), config, "v-test", device=DEVICE, day=DAY, run_id="r")
    finally:
        store.put_bytes(gone, data)
    assert len(day.images) == len(images) == 9
    assert day.count("skipped") == 1 and day.count("error") == 1 and day.count("ok") == 7
    assert "ObjectNotFound" in day.images.set_index("image_key").loc[gone, "error"]
    ok = day.images[day.images.status == "ok"]
    assert ok.n_instances.sum() == len(day.instances) > 0
    for row in ok.itertuples():
        doc = read_uid_svg(store.get_bytes(row.svg_key))
        assert doc.md5 == images.set_index("object_key").loc[row.image_key, "md5"]  # exact JPEG bytes
        assert doc.metadata["algo_version"] == "v-test"
        rows = day.instances[day.instances.image_key == row.image_key]
        assert len(doc.instances) == len(rows) == row.n_instances
        for inst, poly in zip(doc.instances, rows.polygon_wkt, strict=True):
            assert wkt.loads(poly).area == pytest.approx(inst.area)
    assert set(day.instances.model_version) == {"v-test"}
    assert day.instances.score.to_numpy() == pytest.approx(0.99)


class BrokenDetector(BlobDetector):
    """A model that fails on every image (a bad bundle, no GPU memory left)."""

    def predict_batch(self, images):
        raise RuntimeError("CUDA out of memory")


def test_a_day_on_which_every_image_fails_fails_and_keeps_the_previous_outputs(store: LocalObjectStore):
    images = index_device_day(store, DEVICE, DAY).rows
    config = UidConfig(score_threshold=0.5, tile_size=256, tile_overlap=64, original_image_padding=16)
    before = segment_device_day(store, images, BlobDetector(), config, "v-test", device=DEVICE, day=DAY)
    svgs = {i.key: i.md5 for i in store.list(uid_annotation_day_prefix(DEVICE, DAY))}
    assert len(svgs) == before.count("ok") == 8
    with pytest.raises(DayFailed, match="all 8 usable images.*CUDA out of memory"):
        segment_device_day(store, images, BrokenDetector(), config, "v-bad", device=DEVICE, day=DAY)
    assert {i.key: i.md5 for i in store.list(uid_annotation_day_prefix(DEVICE, DAY))} == svgs


@pytest.fixture
def random_bundle(tmp_path: Path) -> Path:
    """A bundle with random-init weights of the small backbone: enough to test the plumbing, not accuracy."""
    bundle = tmp_path / "bundle"
    config = UidConfig(
        backbone="resnet18_fpn", pretrained="none", score_threshold=0.0, tile_size=512, tile_overlap=64,
        detections_per_image=5, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
    )  # fmt: skip
    save_config(config, bundle / "config" / "config.yaml")
    MaskRCNNDetector(config).save(bundle / "output" / "model_final.pth")
    return bundle


def test_asset_writes_rows_and_svgs_and_is_idempotent(store: LocalObjectStore, random_bundle: Path, tmp_path: Path):
    storage = StickyPiStorage(
        store_url=str(store.root), warehouse_path=str(tmp_path / "wh.duckdb"), published_path=str(tmp_path / "p.duckdb")
    )
    resources = {"storage": storage, "uid_model": ModelResource(stage="uid", bundle_dir=str(random_bundle))}
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [DEVICE])
    key = multi_partition_key(DEVICE, DAY)
    for _ in range(2):
        result = materialize([raw_images, uid_segmentations], partition_key=key, instance=instance, resources=resources)
        assert result.success
    meta = result.asset_materializations_for_node("uid_segmentations")[0].metadata
    assert meta["n_images"].value == 8 and meta["n_skipped_images"].value == 1
    version = meta["model_version"].value
    assert meta["instances_per_hour"].value.startswith("![instances per UTC hour](data:image/png;base64,")
    wh = storage.warehouse()
    seg = wh.query("SELECT status, count(*) n, sum(n_instances) k FROM segmented_images GROUP BY ALL ORDER BY 1")
    assert seg["status"].tolist() == ["ok", "skipped"] and seg["n"].tolist() == [8, 1]
    inst = wh.query("SELECT count(*) n, count(DISTINCT instance_id) u FROM instances")
    assert inst["n"][0] == inst["u"][0] == seg.loc[seg.status == "ok", "k"].iloc[0]  # re-run did not duplicate
    assert wh.query("SELECT DISTINCT model_version FROM segmented_images")["model_version"].tolist() == [version]
    assert sum(1 for _ in store.list(uid_annotation_day_prefix(DEVICE, DAY))) == 8


def test_asset_without_trained_model_says_what_to_do(store: LocalObjectStore, tmp_path: Path):
    resources = {
        "storage": StickyPiStorage(store_url=str(store.root), warehouse_path=str(tmp_path / "wh.duckdb")),
        "uid_model": ModelResource(stage="uid", bundle_dir=str(tmp_path / "empty")),
    }
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [DEVICE])
    result = materialize(
        [uid_segmentations], partition_key=multi_partition_key(DEVICE, DAY), instance=instance,
        resources=resources, raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    error, messages = result.get_step_failure_events()[0].event_specific_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    assert any("stickypi uid train --bundle-dir" in m for m in messages)
    assert date(2020, 6, 20) == DAY
