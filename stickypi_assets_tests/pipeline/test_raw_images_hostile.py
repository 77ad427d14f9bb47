"""Hostile inputs to the raw-image ingest: each bad object is one recorded row, the rest of its day is ingested.

Every test builds one device-day with two good frames plus the hostile object and checks both halves of the
guarantee: the bad item's status and reason, and ``ok`` rows for the others. The JPEGs are synthetic noise
(no real data needed, never skipped); noise matters, since a camera frame is never a flat decoder fill.
"""

from __future__ import annotations

import io
import logging
from datetime import date

import numpy as np
import pytest
from PIL import Image

from stickypi_assets.formats.names import InvalidImageName, validate_stored_device
from stickypi_assets.pipeline import raw_images as raw_images_module
from stickypi_assets.pipeline.raw_images import (
    DayIndex,
    audit_raw_images,
    discover_devices,
    image_days,
    index_device_day,
    read_jpeg_header,
)
from stickypi_assets.storage.object_store import LocalObjectStore, ObjectStoreError

DEVICE = "0a1b2c3d"
DAY = date(2020, 6, 20)
GOOD = [f"raw_images/{DEVICE}/{DEVICE}.2020-06-20_{hour}-00-00.jpg" for hour in ("10", "11")]
BAD = f"raw_images/{DEVICE}/{DEVICE}.2020-06-20_12-00-00.jpg"


def noisy_jpeg(seed: int, *, width: int = 320, height: int = 240, make: str | None = None, value: int | None = None):
    """A JPEG of random noise (or of one flat ``value``), 4:2:0 like the Sticky Pi camera, optional EXIF Make."""
    if value is None:
        pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        pixels = np.full((height, width, 3), value, np.uint8)
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def sof_offset(data: bytes) -> int:
    """Offset of the frame's SOF0 marker (Pillow writes no EXIF thumbnail, so the first one is the frame's)."""
    offset = data.find(b"\xff\xc0")
    assert offset > 0
    return offset


def with_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with the SOF claiming ``width`` x ``height`` (the data still encodes the original size)."""
    i = sof_offset(data)
    return data[: i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[i + 9 :]


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "store")
    for seed, key in enumerate(GOOD):
        store.put_bytes(key, noisy_jpeg(seed, make="{'temp': 21.5, 'hum': 40.0}"))
    return store


def rows_by_key(index: DayIndex):
    return index.rows.set_index("object_key")


def assert_good_ingested(index: DayIndex) -> None:
    rows = rows_by_key(index)
    for key in GOOD:
        assert rows.loc[key, "status"] == "ok", rows.loc[key, "error"]
        assert rows.loc[key, "width"] == 320 and rows.loc[key, "height"] == 240
        assert rows.loc[key, "temperature_c"] == 21.5


def bad_row(index: DayIndex, key: str = BAD):
    assert index.n_images == len(GOOD) + 1, index.rows.object_key.tolist()
    return rows_by_key(index).loc[key]


# -- 1. decompression bombs ---------------------------------------------------------------------------------


def test_a_jpeg_claiming_60000x60000_px_is_recorded_and_the_day_ingested(store: LocalObjectStore):
    store.put_bytes(BAD, with_size(noisy_jpeg(7), 60000, 60000))
    index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index)
    assert row.status == "error"
    assert row.error == "image of 60000x60000 px exceeds STICKYPI_MAX_IMAGE_PIXELS=50000000"
    assert (BAD, row.error) in index.errors
    assert_good_ingested(index)


def test_the_pixel_limit_comes_from_the_environment_and_is_checked_before_decoding(store, monkeypatch):
    monkeypatch.setenv("STICKYPI_MAX_IMAGE_PIXELS", str(320 * 240))
    store.put_bytes(BAD, noisy_jpeg(7, width=321))
    row = bad_row(index := index_device_day(store, DEVICE, DAY))
    assert row.status == "error" and row.error == "image of 321x240 px exceeds STICKYPI_MAX_IMAGE_PIXELS=76800"
    assert_good_ingested(index)
    # an explicit limit (the asset passes its resource's settings) wins over the environment
    assert index_device_day(store, DEVICE, DAY, max_image_pixels=10**6).count("ok") == 3


def test_the_header_walk_skips_the_exif_thumbnail_and_reads_the_frame_size():
    header = read_jpeg_header(noisy_jpeg(1, width=96, height=64, make="{'temp': 1}"))
    assert header is not None and (header.width, header.height) == (96, 64)
    assert (header.mcu_width, header.mcu_height, header.n_components) == (16, 16, 3)
    assert read_jpeg_header(b"<html>") is None and read_jpeg_header(b"\xff\xd8\xff\xe0\x00\x00") is None


# -- 2. EXIF Make that is no sensor dict ------------------------------------------------------------------


@pytest.mark.parametrize("make", ["{[1, 2]: 0}", "{{}}", "{[1, 2]}"])
def test_an_exif_make_that_parses_to_an_unhashable_literal_keeps_the_image_without_sensors(store, make, caplog):
    """A safe fallback: the pixels are fine, only the sensor readings are lost (NULL), and the reason is kept."""
    store.put_bytes(BAD, noisy_jpeg(7, make=make))
    with caplog.at_level(logging.WARNING, logger="stickypi_assets.pipeline.raw_images"):
        index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index)
    assert row.status == "ok" and row.error is None and row.width == 320
    assert row.temperature_c is None or np.isnan(row.temperature_c)
    [(key, reason)] = index.warnings
    assert key == BAD and "not a sensor dict (TypeError" in reason and repr(make) in reason
    assert reason in caplog.text
    assert_good_ingested(index)


def test_exif_that_pillow_cannot_parse_keeps_the_image_without_sensors(store, monkeypatch):
    store.put_bytes(BAD, noisy_jpeg(7, height=232, make="{'temp': 30}"))
    real_getexif = Image.Image.getexif

    def getexif(self):  # Pillow's EXIF parser on hostile bytes (only the bad image is 232 px high)
        if self.size == (320, 232):
            raise SyntaxError("not a TIFF file")
        return real_getexif(self)

    monkeypatch.setattr(Image.Image, "getexif", getexif)
    index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index)
    assert row.status == "ok" and (row.temperature_c is None or np.isnan(row.temperature_c))
    why = "EXIF unreadable (SyntaxError: not a TIFF file); temperature and humidity left empty"
    assert index.warnings == [(BAD, why)]
    assert_good_ingested(index)


# -- 3. keys no store call accepts ------------------------------------------------------------------------


def test_a_key_with_a_backslash_under_the_day_prefix_is_recorded_and_the_day_ingested(store: LocalObjectStore):
    # another tool wrote it on disk; the store itself never writes such a key
    key = f"raw_images/{DEVICE}/{DEVICE}.2020-06-20_12-00-00\\{DEVICE}.2020-06-20_12-00-00.jpg"
    (store.root / key).write_bytes(noisy_jpeg(7))
    assert key in [info.key for info in store.list(f"raw_images/{DEVICE}/")]  # listed as is
    index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index, key)
    assert row.status == "error" and "key not readable through the object store" in row.error
    assert "backslash" in row.error
    assert_good_ingested(index)
    assert image_days(store, DEVICE) == [DAY]
    assert "backslash" in dict(audit_raw_images(store))[key]


def test_a_key_in_a_sub_folder_of_the_device_folder_is_recorded_not_ingested(store: LocalObjectStore):
    key = f"raw_images/{DEVICE}/{DEVICE}.2020-06-20_sub/{DEVICE}.2020-06-20_12-00-00.jpg"
    store.put_bytes(key, noisy_jpeg(7))
    index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index, key)
    assert row.status == "error" and row.error.startswith(f"not directly in raw_images/{DEVICE}/")
    assert_good_ingested(index)


@pytest.mark.s3
@pytest.mark.parametrize(
    ("suffix", "reason"),
    [("\\copy.jpg", "backslash"), ("//copy.jpg", "empty folder name ('//')"), ("/../x.jpg", "'..' segment")],
)
def test_a_foreign_key_under_the_day_prefix_on_s3_is_recorded_and_the_day_ingested(s3_endpoint, suffix, reason):
    store = s3_endpoint.store()
    for seed, key in enumerate(GOOD):
        store.put_bytes(key, noisy_jpeg(seed, make="{'temp': 21.5, 'hum': 40.0}"))
    key = f"raw_images/{DEVICE}/{DEVICE}.2020-06-20_12-00-00{suffix}"
    s3_endpoint.client().put_object(Bucket=s3_endpoint.bucket, Key=key, Body=noisy_jpeg(7))
    assert key in [info.key for info in store.list(f"raw_images/{DEVICE}/")]  # listed as is
    index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index, key)
    assert row.status == "error" and "key not readable through the object store" in row.error
    assert reason in row.error
    assert_good_ingested(index)


# -- 4. JPEGs that decode without error but are incomplete ------------------------------------------------


def test_a_jpeg_truncated_then_closed_with_an_eoi_marker_is_recorded_and_the_day_ingested(store):
    good = noisy_jpeg(7)
    store.put_bytes(BAD, good[: len(good) // 2] + b"\xff\xd9")
    index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index)
    assert row.status == "error" and row.error.startswith("corrupt JPEG: the data ends before the 320x240 px frame")
    assert_good_ingested(index)


def test_a_jpeg_truncated_a_few_blocks_before_its_end_then_closed_is_recorded(store):
    """The hardest cut: only the last MCU row is partly missing (most of the frame decodes fine)."""
    good = noisy_jpeg(7)
    store.put_bytes(BAD, good[:-400] + b"\xff\xd9")
    row = bad_row(index := index_device_day(store, DEVICE, DAY))
    assert row.status == "error" and "truncated, or the header claims a larger size" in row.error
    assert_good_ingested(index)


def test_a_jpeg_whose_sof_claims_more_rows_than_encoded_is_recorded_and_the_day_ingested(store):
    store.put_bytes(BAD, with_size(noisy_jpeg(7), 320, 240 + 64))
    index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index)
    assert row.status == "error" and row.error.startswith("corrupt JPEG: the data ends before the 320x304 px frame")
    assert_good_ingested(index)


def test_a_jpeg_truncated_without_an_end_marker_is_still_recorded(store):
    good = noisy_jpeg(7)
    store.put_bytes(BAD, good[: len(good) // 2])
    row = bad_row(index := index_device_day(store, DEVICE, DAY))
    assert row.status == "error" and row.error.startswith("corrupt JPEG: image file is truncated")
    assert_good_ingested(index)


@pytest.mark.parametrize("value", [0, 127, 129, 255])
def test_flat_frames_that_are_not_the_decoder_fill_are_ok(store, value):
    """Dark night frames and flat cards are complete images: only exact mid-grey is the decoder's fill."""
    store.put_bytes(BAD, noisy_jpeg(7, value=value))
    row = bad_row(index := index_device_day(store, DEVICE, DAY))
    assert row.status == "ok", row.error
    assert_good_ingested(index)


# -- 5. device ids that differ only in case ---------------------------------------------------------------


def test_an_upper_case_device_folder_is_refused_not_a_second_device(store: LocalObjectStore):
    upper = DEVICE.upper()
    twin = f"raw_images/{upper}/{upper}.2020-06-20_12-00-00.jpg"
    store.put_bytes(twin, noisy_jpeg(7))
    assert discover_devices(store) == ([DEVICE], [upper])
    index = index_device_day(store, DEVICE, DAY)
    assert index.n_images == len(GOOD)  # the lower-case partition lists only its own (case-sensitive) prefix
    assert_good_ingested(index)
    with pytest.raises(InvalidImageName, match="rename it to '0a1b2c3d'"):
        index_device_day(store, upper, DAY)
    assert "rename it to '0a1b2c3d'" in dict(audit_raw_images(store))[twin]
    with pytest.raises(InvalidImageName, match="lower-case"):
        validate_stored_device(upper)


def test_an_upper_case_file_name_in_the_device_folder_is_reported_by_the_audit(store: LocalObjectStore):
    key = f"raw_images/{DEVICE}/{DEVICE.upper()}.2020-06-20_12-00-00.jpg"
    store.put_bytes(key, noisy_jpeg(7))
    assert "rename it to '0a1b2c3d'" in dict(audit_raw_images(store))[key]
    assert index_device_day(store, DEVICE, DAY).n_images == len(GOOD)  # not under the day prefix


# -- any other failure of one object ------------------------------------------------------------------------


def test_an_unexpected_exception_in_one_image_is_recorded_with_its_type_and_logged(store, monkeypatch, caplog):
    bad = noisy_jpeg(7)
    store.put_bytes(BAD, bad)
    real_inspect = raw_images_module.inspect_jpeg

    def inspect(data: bytes, **kwargs):
        if data == bad:
            raise KeyError("a bug in the metadata path")
        return real_inspect(data, **kwargs)

    monkeypatch.setattr(raw_images_module, "inspect_jpeg", inspect)
    with caplog.at_level(logging.ERROR, logger="stickypi_assets.pipeline.raw_images"):
        index = index_device_day(store, DEVICE, DAY)
    row = bad_row(index)
    assert row.status == "error" and row.error == "unexpected KeyError: 'a bug in the metadata path'"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and BAD in record.getMessage()  # the traceback is logged, not hidden
    assert_good_ingested(index)


def test_a_failing_store_fails_the_day_instead_of_recording_good_images_as_errors(store, monkeypatch):
    def get_bytes(key: str) -> bytes:
        raise ObjectStoreError(f"get {key} failed: SlowDown")

    monkeypatch.setattr(store, "get_bytes", get_bytes)
    with pytest.raises(ObjectStoreError, match="SlowDown"):
        index_device_day(store, DEVICE, DAY)
