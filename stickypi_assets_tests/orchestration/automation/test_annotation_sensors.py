"""Retraining sensors: one run per change of annotation content, none for re-uploads, cursor across restarts."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, DagsterInstance, SensorResult, SkipReason, build_sensor_context

from stickypi_assets.definitions import defs
from stickypi_assets.orchestration.automation.annotation_sensors import ANNOTATION_SENSORS, annotation_sensor
from stickypi_assets.orchestration.resources import StickyPiStorage


def tick(sensor, storage: StickyPiStorage, cursor: str | None, instance: DagsterInstance):
    with build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage}) as ctx:
        return sensor(ctx)


def test_new_changed_and_unchanged_annotations(tmp_path: Path):
    storage = StickyPiStorage(store_url=str(tmp_path / "store"), warehouse_path=str(tmp_path / "wh.duckdb"))
    store = storage.object_store()
    instance = DagsterInstance.ephemeral()
    sensor = annotation_sensor("uid")
    assert isinstance(tick(sensor, storage, None, instance), SkipReason)  # nothing yet

    store.put_bytes("annotations/uid/a.svg", b"<svg>a</svg>")
    store.put_bytes("annotations/uid/notes.txt", b"not an annotation")  # ignored
    first = tick(sensor, storage, None, instance)
    assert isinstance(first, SensorResult) and len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key == f"uid-{first.cursor}"
    assert request.asset_selection == [AssetKey("uid_model")]  # a run of the named training job, this stage only
    assert defs.resolve_sensor_def("uid_annotations_sensor").job_name == "model_training_job"

    # a daemon restart: a new evaluation with the stored cursor sees no change, so requests nothing
    assert isinstance(tick(sensor, storage, first.cursor, instance), SkipReason)
    # re-uploading the same bytes is not a change
    store.put_bytes("annotations/uid/a.svg", b"<svg>a</svg>")
    assert isinstance(tick(sensor, storage, first.cursor, instance), SkipReason)
    # a changed file and a new file are
    store.put_bytes("annotations/uid/a.svg", b"<svg>a, corrected</svg>")
    second = tick(sensor, storage, first.cursor, instance)
    assert isinstance(second, SensorResult) and second.cursor != first.cursor
    store.put_bytes("annotations/uid/b.svg", b"<svg>b</svg>")
    third = tick(sensor, storage, second.cursor, instance)
    assert isinstance(third, SensorResult) and len({first.cursor, second.cursor, third.cursor}) == 3
    # a lost cursor re-requests the same content with the same run key: Dagster runs a run key once
    again = tick(sensor, storage, None, instance)
    assert again.run_requests[0].run_key == third.run_requests[0].run_key
    # another stage's sensor does not see UID annotations
    assert isinstance(tick(annotation_sensor("sim"), storage, None, instance), SkipReason)


def test_itc_sensor_watches_tuboids_and_databases(tmp_path: Path):
    storage = StickyPiStorage(store_url=str(tmp_path / "store"), warehouse_path=str(tmp_path / "wh.duckdb"))
    store = storage.object_store()
    instance = DagsterInstance.ephemeral()
    store.put_bytes("annotations/itc/series/t.0001/metadata.txt", b"x")
    first = tick(annotation_sensor("itc"), storage, None, instance)
    store.put_bytes("annotations/itc/database.db", b"sqlite")
    second = tick(annotation_sensor("itc"), storage, first.cursor, instance)
    assert isinstance(second, SensorResult) and second.run_requests[0].run_key.startswith("itc-")
    assert {s.name for s in ANNOTATION_SENSORS} == {"uid_annotations_sensor", "sim_annotations_sensor",
                                                     "itc_annotations_sensor"}  # fmt: skip


def test_annotations_the_current_model_was_trained_on_request_nothing(tmp_path: Path):
    """A fresh daemon (no cursor) does not retrain a model on the very annotations it learnt from."""
    from stickypi_assets.lifecycle.training import annotation_manifest
    from stickypi_assets_tests.lifecycle.test_registry import itc_bundle

    storage = StickyPiStorage(store_url=str(tmp_path / "store"), warehouse_path=str(tmp_path / "wh.duckdb"))
    store = storage.object_store()
    instance = DagsterInstance.ephemeral()
    store.put_bytes("annotations/itc/series/t.0001/metadata.txt", b"x")
    store.put_bytes("annotations/itc/database.db", b"sqlite")
    storage.registry().register("itc", itc_bundle(tmp_path / "b", seed=0), {"macro_recall": 0.9},
                                annotation_manifest(store, "itc"))  # fmt: skip
    result = tick(annotation_sensor("itc"), storage, None, instance)
    assert isinstance(result, SensorResult) and not result.run_requests
    assert "was trained on these 2 annotation files" in result.skip_reason.skip_message and result.cursor
    store.put_bytes("annotations/itc/database.db", b"sqlite, one more row")  # new content: retrain
    changed = tick(annotation_sensor("itc"), storage, result.cursor, instance)
    assert len(changed.run_requests) == 1


def test_idle_ticks_do_not_hash_the_annotations_again(tmp_path: Path, monkeypatch):
    """The resource is rebuilt every tick but the store is shared per process and settings, so its md5 cache
    survives: an idle tick reads no annotation byte; a changed file is hashed again (and only it)."""
    import hashlib

    store_url = str(tmp_path / "store")
    storage = StickyPiStorage(store_url=store_url, warehouse_path=str(tmp_path / "wh.duckdb"))
    for i in range(3):
        storage.object_store().put_bytes(f"annotations/uid/{i}.svg", f"<svg>{i}</svg>".encode())
    instance = DagsterInstance.ephemeral()
    sensor = annotation_sensor("uid")
    first = tick(sensor, storage, None, instance)
    hashed: list[int] = []  # one entry per file whose bytes were read to hash them
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda f, d: hashed.append(1) or real(f, d))
    for _ in range(3):  # a new resource per tick, as the daemon builds them
        again = StickyPiStorage(store_url=store_url, warehouse_path=str(tmp_path / "wh.duckdb"))
        assert isinstance(tick(sensor, again, first.cursor, instance), SkipReason)
    assert hashed == []
    assert storage.object_store() is again.object_store()
    other = StickyPiStorage(store_url=str(tmp_path / "other"), warehouse_path=str(tmp_path / "wh.duckdb"))
    assert other.object_store() is not storage.object_store()  # other settings, other store

    storage.object_store().put_bytes("annotations/uid/1.svg", b"<svg>changed</svg>")
    external = tmp_path / "store" / "annotations" / "uid" / "2.svg"
    external.write_bytes(b"<svg>edited in place by another tool</svg>")  # size and mtime change
    changed = tick(sensor, storage, first.cursor, instance)
    assert isinstance(changed, SensorResult) and changed.run_requests
    assert len(hashed) == 1  # only the file edited in place: the store's own write recorded its md5


def test_retrain_every_n_waits_for_n_changed_items(tmp_path: Path, monkeypatch):
    """STICKYPI_RETRAIN_EVERY_N=3: a current model is retrained once 3 annotation items changed, a tuboid folder's
    three files counting as one item; the cursor does not move while waiting."""
    from stickypi_assets.lifecycle.training import annotation_manifest, changed_items
    from stickypi_assets_tests.lifecycle.test_registry import itc_bundle

    monkeypatch.setenv("STICKYPI_RETRAIN_EVERY_N", "3")
    storage = StickyPiStorage(store_url=str(tmp_path / "store"), warehouse_path=str(tmp_path / "wh.duckdb"))
    store = storage.object_store()
    instance = DagsterInstance.ephemeral()
    sensor = annotation_sensor("itc")
    store.put_bytes("annotations/itc/s/t.0001/metadata.txt", b"x")
    first = tick(sensor, storage, None, instance)  # no model yet: the first annotations train one
    assert len(first.run_requests) == 1
    storage.registry().register("itc", itc_bundle(tmp_path / "b", seed=0), {"macro_recall": 0.9},
                                annotation_manifest(store, "itc"))  # fmt: skip
    for name in ("metadata.txt", "tuboid.jpg", "context.jpg"):  # one new folder: one item
        store.put_bytes(f"annotations/itc/s/t.0002/{name}", b"y")
    store.put_bytes("annotations/itc/database.db", b"sqlite")  # a second item
    waiting = tick(sensor, storage, first.cursor, instance)
    assert isinstance(waiting, SkipReason) and "2 annotation item(s)" in waiting.skip_message
    assert changed_items(annotation_manifest(store, "itc"), storage.registry().current("itc").data_manifest) == {
        "annotations/itc/s/t.0002/", "annotations/itc/database.db"}
    store.put_bytes("annotations/itc/s/t.0001/metadata.txt", b"x, corrected")  # the third
    due = tick(sensor, storage, first.cursor, instance)
    assert isinstance(due, SensorResult) and len(due.run_requests) == 1
