"""The learning loop's assets end to end: scores after the stages, the queue, its pre-annotations and statuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dagster import DagsterInstance, materialize

from stickypi_assets.formats.labels import LabelMap
from stickypi_assets.ml.itc.config import ItcConfig, save_config
from stickypi_assets.ml.itc.model import ItcNet, save_checkpoint
from stickypi_assets.ml.itc.validate import short_name
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.config import save_config as save_uid_config
from stickypi_assets.ml.uid.model import MaskRCNNDetector
from stickypi_assets.orchestration.assets.active_learning import annotation_queue, image_scores, tuboid_scores
from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.partitions import multi_partition_key
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.al_rounds import read_rounds
from stickypi_assets.pipeline.annotation_queue import QueuePolicy, read_queue, update_queue
from stickypi_assets.pipeline.taxon_drift import drift_asks, taxon_drift
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.tuboids import SYNTH_LABELS
from stickypi_assets_tests.chain_helpers import IouSimModel, ground_truth_segmentations

# 12 frames of 384x288 (one every 2 h, one UID tile each): enough tuboids and images to pick from, seconds of scoring
SYNTH = SynthConfig(devices=1, days=1, seed=12, width=384, height=288, interval_s=7200, interval_jitter_s=0,
                    missing_frame_prob=0, arrival_rate_day=6.0, arrival_rate_night=2.0)  # fmt: skip
DEVICE = SYNTH.device_ids[0]
DAY = SYNTH.start_date


PASSES = 4


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    """A device-day through tuboids, classifications and their scores (``PASSES`` MC-dropout passes), with
    random-init UID and ITC bundles (the plumbing; ``active/`` tests what the scores mean)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("STICKYPI_AL_PASSES", str(PASSES))
    root = tmp_path_factory.mktemp("al")
    store = LocalObjectStore(root / "store")
    generate(SYNTH, store)
    storage = StickyPiStorage(store_url=str(store.root), warehouse_path=str(root / "wh.duckdb"),
                              published_path=str(root / "pub.duckdb"))  # fmt: skip
    ground_truth_segmentations(store, storage, DEVICE, [DAY])
    uid = root / "uid"
    config = UidConfig(backbone="resnet18_fpn", pretrained="none", score_threshold=0.0, tile_size=384,
                       tile_overlap=32, detections_per_image=5, rpn_pre_nms_top_n_test=50,
                       rpn_post_nms_top_n_test=20)  # fmt: skip
    save_uid_config(config, uid / "config" / "config.yaml")
    MaskRCNNDetector(config).save(uid / "output" / "model_final.pth")
    itc = root / "itc"
    itc_config = ItcConfig(labels=SYNTH_LABELS, backbone="resnet18", input_size=64, n_shots=4)
    save_config(itc_config, itc / "config" / "config.yaml")
    torch.manual_seed(0)  # one random init everywhere: it calls 96% of the day one taxon (the drift tests)
    save_checkpoint(ItcNet.from_config(itc_config), itc / "output" / "model_final.pth", itc_config)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [DEVICE])
    resources = {"storage": storage, "sim_model": IouSimModel(gating_radius_px=60),
                 "uid_model": ModelResource(stage="uid", bundle_dir=str(uid)),
                 "itc_model": ModelResource(stage="itc", bundle_dir=str(itc))}  # fmt: skip
    key = multi_partition_key(DEVICE, DAY)
    assets = [tuboids, classifications, image_scores, tuboid_scores]
    result = materialize(assets, partition_key=key, instance=instance, resources=resources)
    assert result.success
    yield {"store": store, "storage": storage, "instance": instance, "resources": resources, "key": key,
           "result": result}  # fmt: skip
    mp.undo()


def test_scores_after_the_stages_are_complete_and_replace_their_rows(chain):
    result = chain["result"]
    wh = chain["storage"].warehouse()
    seg = wh.query("SELECT * FROM segmented_images WHERE status = 'ok'")
    img = wh.query("SELECT * FROM image_scores ORDER BY item")
    assert len(img) == len(seg) == img["item"].nunique() >= 10
    assert set(img.status) == {"ok"} and img.maskal_certainty.between(0, 1).all()
    assert np.allclose(img.maskal_uncertainty, 1 - img.maskal_certainty)
    assert set(img.maskal_pass) == {"boxes", "masks"}  # the least certain fifth again with masks
    assert (img.maskal_pass == "masks").sum() == int(np.ceil(0.2 * len(img)))
    assert sorted(img.svg_key) == sorted(seg.svg_key) and img.embedding.map(len).min() > 0
    meta = result.asset_materializations_for_node("image_scores")[0].metadata
    assert meta["n_scored"].value == len(img) and meta["passes"].value == PASSES
    tubs = wh.query("SELECT * FROM tuboids WHERE folder_key IS NOT NULL")
    tsc = wh.query("SELECT * FROM tuboid_scores ORDER BY item")
    assert sorted(tsc["item"]) == sorted(tubs.folder_id) and len(tsc) >= 3
    assert tsc.margin.between(0, 1).all() and tsc.frame_disagreement.notna().all()
    top = tsc.top_k.map(json.loads)
    assert all(len(t) == 3 and t[0]["pattern"] == p for t, p in zip(top, tsc.pattern, strict=True))
    # the day's taxon drift warnings are the drift columns of the folders they point at
    classified = wh.query("SELECT * FROM classifications")
    names = [short_name(LabelMap.from_config(SYNTH_LABELS), k) for k in range(len(SYNTH_LABELS))]
    asks = drift_asks(classified, taxon_drift(classified, None), names)  # a bundle folder: no registered validation
    pointed = tsc[tsc.drift.notna()]
    assert len(asks) and sorted(pointed["item"]) == sorted(asks.folder_id)
    assert pointed.set_index("item").drift.to_dict() == pytest.approx(asks.set_index("folder_id").drift.to_dict())
    assert tsc.drift_reason.notna().sum() == len(asks)
    # a re-run replaces the day's rows (same seeds: the same scores), never duplicates them
    kw = {"partition_key": chain["key"], "instance": chain["instance"], "resources": chain["resources"]}
    assert materialize([tuboid_scores], **kw).success
    again = wh.query("SELECT * FROM tuboid_scores ORDER BY item")
    assert again["item"].tolist() == tsc["item"].tolist() and np.allclose(again.margin, tsc.margin)
    assert (again.run_id != tsc.run_id).all()


def test_queue_pre_annotates_never_repeats_and_follows_annotations(chain, monkeypatch):
    store, storage = chain["store"], chain["storage"]
    kw = {"instance": chain["instance"], "resources": chain["resources"]}
    monkeypatch.setenv("STICKYPI_AL_IMAGE_BUDGET", "3")
    monkeypatch.setenv("STICKYPI_AL_TUBOID_BUDGET", "2")
    # an image annotated before anything was queued (training data) is never asked for
    trained = storage.warehouse().query("SELECT item FROM image_scores ORDER BY maskal_certainty LIMIT 1").item[0]
    store.put_bytes(f"annotations/uid/{trained}.svg", b"<svg/>")

    result = materialize([annotation_queue], **kw)
    assert result.success
    q = read_queue(storage.warehouse())
    assert sorted(q.kind) == ["image"] * 3 + ["tuboid"] * 2 and set(q.status) == {"queued"} and set(q.batch) == {1}
    assert trained not in set(q["item"])
    meta = result.asset_materializations_for_node("annotation_queue")[0].metadata
    assert meta["n_new"].value == 5 and "maskal" in meta["new_batch"].value
    scores = storage.warehouse().query("SELECT item, svg_key FROM image_scores").set_index("item")
    for row in q[q.kind == "image"].itertuples():  # the UID's SVG, byte for byte, where Inkscape users find it
        assert row.pre_annotation_key == f"pre_annotations/uid/{DEVICE}/{row.item}.svg"
        assert store.get_bytes(row.pre_annotation_key) == store.get_bytes(scores.loc[row.item, "svg_key"])
    for row in q[q.kind == "tuboid"].itertuples():
        names = {i.key.rsplit("/", 1)[-1] for i in store.list(row.pre_annotation_key)}
        assert {"metadata.txt", "tuboid.jpg", "candidates.json"} <= names
        candidates = json.loads(store.get_bytes(row.pre_annotation_key + "candidates.json"))
        assert candidates["folder_id"] == row.item and len(candidates["candidates"]) == 3
    # images of one device are at least 2 h apart in a batch
    times = sorted(q.loc[q.kind == "image", "datetime"])
    assert all((b - a).total_seconds() >= 7200 for a, b in zip(times, times[1:], strict=False))

    # the first round of the halting signals: one per stage, for the version the scores carry
    rounds = read_rounds(storage.warehouse())
    assert rounds[["stage", "round"]].values.tolist() == [["itc", 1], ["uid", 1]]
    assert set(rounds.model_version) == set(scores_versions(storage)) and rounds.contradictions.isna().all()
    assert meta["n_new_rounds"].value == 2 and "| 1 |" in meta["uid_rounds"].value

    # nothing annotated yet: a re-run asks for nothing new (a full batch is waiting), and records no round
    assert materialize([annotation_queue], **kw).success
    assert len(read_queue(storage.warehouse())) == 5 and len(read_rounds(storage.warehouse())) == 2

    # one image and one tuboid come back annotated: they change status, and a new batch never repeats an item
    image, tuboid = q[q.kind == "image"].item.iloc[0], q[q.kind == "tuboid"].item.iloc[0]
    store.put_bytes(f"annotations/uid/corrected/a_{image}.svg", b"<svg/>")
    store.put_bytes(f"annotations/itc/batch1/{tuboid}/metadata.txt", b"x")
    result = materialize([annotation_queue], **kw)
    after = read_queue(storage.warehouse())
    annotated = after[after.status == "annotated"]
    assert sorted(annotated["item"]) == sorted([image, tuboid])
    assert set(annotated.annotation_key) == {f"annotations/uid/corrected/a_{image}.svg",
                                             f"annotations/itc/batch1/{tuboid}/"}  # fmt: skip
    assert after["item"].is_unique and trained not in set(after["item"])
    assert set(after.loc[after.batch == 2, "kind"]) == {"image", "tuboid"}
    assert result.asset_materializations_for_node("annotation_queue")[0].metadata["n_newly_annotated"].value == 2


def test_queue_is_deterministic_and_reports_a_bad_mix(chain, tmp_path: Path):
    storage = chain["storage"]
    policy = QueuePolicy(budgets={"image": 4, "tuboid": 0}, mixes={"image": "maskal:0.5,random:0.5", "tuboid": ""})
    picks = []
    for k in range(2):
        wh = StickyPiStorage(store_url=str(chain["store"].root), warehouse_path=str(tmp_path / f"w{k}.duckdb"),
                             published_path=str(tmp_path / f"p{k}.duckdb")).warehouse()  # fmt: skip
        for table in ("image_scores",):
            wh.write_partition(table, *_one_partition(storage, table))
        picks.append(update_queue(chain["store"], wh, policy).new[["item", "sampler", "reason"]])
    assert picks[0].equals(picks[1]) and len(picks[0]) == 4
    bad = QueuePolicy(budgets={"image": 4, "tuboid": 0}, mixes={"image": "maskal:lots", "tuboid": ""})
    with pytest.raises(ValueError, match="share is a number"):
        update_queue(chain["store"], wh, bad)


def test_the_queue_asks_for_what_the_day_s_drift_points_at(chain, tmp_path: Path):
    """The random-init ITC calls most of the day one taxon (a collapse): the drift sampler asks for the least sure."""
    storage = chain["storage"]
    wh = StickyPiStorage(store_url=str(chain["store"].root), warehouse_path=str(tmp_path / "w.duckdb"),
                         published_path=str(tmp_path / "p.duckdb")).warehouse()  # fmt: skip
    wh.write_partition("tuboid_scores", *_one_partition(storage, "tuboid_scores"))
    policy = QueuePolicy(budgets={"image": 0, "tuboid": 3}, mixes={"image": "", "tuboid": "drift:1"})
    new = update_queue(chain["store"], wh, policy).new
    scores = wh.query("SELECT item, drift FROM tuboid_scores WHERE drift IS NOT NULL ORDER BY drift DESC, item")
    assert set(new.sampler) == {"drift"} and len(new) == 3
    assert new.score.tolist() == pytest.approx(scores.drift.head(3).tolist())
    assert all(r.startswith("predictions collapse onto ") and "; predicted " in r for r in new.reason)


def scores_versions(storage: StickyPiStorage) -> list[str]:
    wh = storage.warehouse()
    return [wh.query(f"SELECT DISTINCT model_version FROM {t}").model_version[0] for t in ("image_scores",
                                                                                          "tuboid_scores")]


def _one_partition(storage: StickyPiStorage, table: str):
    from stickypi_assets.storage.warehouse import PartitionKey

    partition = PartitionKey(DEVICE, DAY)
    return partition, storage.warehouse().read_partition_parquet(table, partition)


def test_cli_shows_and_updates_the_queue_without_dagster(chain, tmp_path: Path, monkeypatch, capsys):
    from stickypi_assets.cli import main

    storage = chain["storage"]
    monkeypatch.setenv("STICKYPI_DATA_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("STICKYPI_STORE_URL", str(chain["store"].root))
    monkeypatch.setenv("STICKYPI_WAREHOUSE_PATH", storage.warehouse_path)
    monkeypatch.setenv("STICKYPI_PUBLISHED_PATH", storage.published_path)
    queue = read_queue(storage.warehouse())
    assert main(["al", "queue", "--status", "all"]) == 0
    out = capsys.readouterr().out
    assert all(item in out for item in queue["item"]) and "[maskal]" in out
    monkeypatch.setenv("STICKYPI_AL_TUBOID_MIX", "margin:x")
    assert main(["al", "queue", "--update"]) == 1
    assert "STICKYPI_AL_TUBOID_MIX='margin:x'" in capsys.readouterr().err
    monkeypatch.delenv("STICKYPI_AL_TUBOID_MIX")
    monkeypatch.setenv("STICKYPI_AL_IMAGE_BUDGET", "1")
    monkeypatch.setenv("STICKYPI_AL_TUBOID_BUDGET", "0")
    before = len(queue)
    assert main(["al", "queue", "--update", "--kind", "image"]) == 0
    out = capsys.readouterr().out
    after = read_queue(storage.warehouse())
    assert "queued" in out and len(after) >= before and after["item"].is_unique


def test_an_unreadable_tuboid_folder_is_an_error_row_and_the_others_are_scored(chain):
    from stickypi_assets.pipeline.tuboid_scores import score_tuboid_day

    storage = chain["storage"]
    tubs = storage.warehouse().query("SELECT * FROM tuboids WHERE folder_key IS NOT NULL ORDER BY folder_id LIMIT 2")
    tubs.loc[0, "folder_key"] = "tiled_tuboids/gone/nothing.0000/"  # deleted since it was tracked
    classifier, _, version = chain["resources"]["itc_model"].load()
    day = score_tuboid_day(chain["store"], tubs, classifier, version, device=DEVICE, day=DAY, passes=2)
    assert day.count("ok") == 1 and day.count("error") == 1
    bad = day.rows[day.rows.status == "error"].iloc[0]
    assert bad["folder_key"] == "tiled_tuboids/gone/nothing.0000/" and "ObjectNotFound" in bad["error"]
    assert day.errors == [("tiled_tuboids/gone/nothing.0000/", bad["error"])]


def test_drift_comes_from_the_scoring_model_s_own_classifications(chain):
    """Classifications by another model version (the day not yet re-classified) point at nothing."""
    from stickypi_assets.pipeline.tuboid_scores import score_tuboid_day

    wh = chain["storage"].warehouse()
    tubs = wh.query("SELECT * FROM tuboids WHERE folder_key IS NOT NULL ORDER BY folder_id")
    classified = wh.query("SELECT * FROM classifications")
    classifier, _, version = chain["resources"]["itc_model"].load()
    kw = {"device": DEVICE, "day": DAY, "passes": 2}
    own = score_tuboid_day(chain["store"], tubs, classifier, version, classified=classified, **kw).rows
    older = score_tuboid_day(chain["store"], tubs, classifier, version,
                             classified=classified.assign(model_version="an-older-version"), **kw).rows  # fmt: skip
    assert own.drift.notna().sum() > len(tubs) / 2  # the collapsed taxon's folders
    assert older.drift.isna().all() and older.drift_reason.isna().all()
