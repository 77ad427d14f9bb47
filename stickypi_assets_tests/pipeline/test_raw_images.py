"""Ingest of real Sticky Pi JPEGs plus the bad inputs a field deployment produces."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from stickypi_assets.formats.split import md5_file
from stickypi_assets.pipeline.raw_images import (
    ImageDecodeError,
    audit_raw_images,
    discover_devices,
    image_days,
    index_device_day,
    inspect_jpeg,
    raw_day_prefix,
)
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets_tests.conftest import stickypi_path

DAY = date(2020, 6, 20)


def load_real_raw(store: LocalObjectStore) -> list[Path]:
    files = sorted(stickypi_path("raw").rglob("*.jpg"))
    for f in files:
        store.put_file(f"raw_images/{f.parent.name}/{f.name}", f)
    return files


@pytest.fixture(scope="module")
def real_store(tmp_path_factory) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path_factory.mktemp("store"))
    files = load_real_raw(store)
    good = files[0].read_bytes()
    dev = "0a5bb6f4"
    bad = {
        f"{dev}.2020-06-20_22-00-00.jpg": good[: len(good) // 3],  # truncated upload
        f"{dev}.2020-06-20_22-20-00.jpg": b"",  # empty object
        f"{dev}.2020-06-20_22-40-00.jpg": b"<html>not an image</html>",
        f"{dev}.2020-06-20_25-00-00.jpg": good,  # impossible time
        f"{dev}.2020-06-20_23-00-00.jpg": good,  # same bytes re-uploaded under another name
        f"{dev}.2020-06-20_23-20-00.jpg.thumbnail": good,  # API thumbnails are not images of the day
        "1b74105a.2020-06-20_23-40-00.jpg": good,  # filed under the wrong device folder
    }
    for name, data in bad.items():
        store.put_bytes(f"raw_images/{dev}/{name}", data)
    store.put_bytes("raw_images/not-a-device/x.jpg", good)
    return store


def test_real_day_with_bad_inputs_is_fully_recorded(real_store: LocalObjectStore):
    index = index_device_day(real_store, "0a5bb6f4", DAY, run_id="r1")
    rows = index.rows.set_index("object_key")
    assert index.n_images == 11  # 5 real + 6 bad under the day's prefix: nothing is dropped
    ok = rows[rows.status == "ok"]
    assert len(ok) == 5
    assert (ok.width == 2592).all() and (ok.height == 1944).all()
    for f in sorted(stickypi_path("raw", "0a5bb6f4").glob("*.jpg")):
        row = rows.loc[f"raw_images/0a5bb6f4/{f.name}"]
        assert row.md5 == md5_file(f)
        assert row.datetime.strftime("%Y-%m-%d_%H-%M-%S") == f.stem.split(".")[1]
    err = rows[rows.status == "error"].error.to_dict()
    assert "corrupt JPEG" in err["raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_22-00-00.jpg"]
    assert "empty file" in err["raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_22-20-00.jpg"]
    assert "not an image" in err["raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_22-40-00.jpg"]
    assert "not a real calendar date" in err["raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_25-00-00.jpg"]
    assert "three dot-separated" in err["raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_23-20-00.jpg.thumbnail"]
    dup = rows.loc["raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_23-00-00.jpg"]
    assert dup.status == "duplicate" and "same bytes as raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_20-19-15" in dup.error
    assert len(index.errors) == 5


def test_audit_reports_what_no_partition_will_index(real_store: LocalObjectStore):
    problems = dict(audit_raw_images(real_store))
    assert "device 1b74105a filed under raw_images/0a5bb6f4/" in problems[
        "raw_images/0a5bb6f4/1b74105a.2020-06-20_23-40-00.jpg"
    ]
    assert "8 hexadecimal digits" in problems["raw_images/not-a-device/x.jpg"]
    assert "not a real calendar date" in problems["raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_25-00-00.jpg"]
    assert len(problems) == 3  # thumbnails and the 8 real images are fine


def test_exif_sensor_data_is_read(real_store: LocalObjectStore):
    rows = index_device_day(real_store, "5c173ff2", DAY).rows
    assert len(rows) == 1 and rows.status.tolist() == ["ok"]
    assert rows.temperature_c.notna().all() and rows.humidity_pct.notna().all()


def test_empty_day_and_discovery(real_store: LocalObjectStore):
    assert index_device_day(real_store, "0a5bb6f4", date(2020, 6, 21)).n_images == 0
    assert discover_devices(real_store) == (["0a5bb6f4", "1b74105a", "5c173ff2"], ["not-a-device"])
    assert image_days(real_store, "1b74105a") == [date(2020, 7, 5)]
    assert raw_day_prefix("0a5bb6f4", DAY) == "raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_"


def test_inspect_jpeg_rejects_garbage():
    with pytest.raises(ImageDecodeError, match="empty"):
        inspect_jpeg(b"")
    with pytest.raises(ImageDecodeError):
        inspect_jpeg(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
