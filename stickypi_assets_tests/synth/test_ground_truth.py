"""The written ground truth is complete, consistent with the images, and readable by the format modules."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pandas as pd

from stickypi_assets.formats.itc_database import read_annotations
from stickypi_assets.formats.names import parse_image_name
from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets_tests.synth.conftest import Run


def test_objects_follow_the_sticky_pi_layout(small_run: Run) -> None:
    keys = {info.key for info in small_run.store.list("")}
    device = small_run.config.device_ids[0]
    raw = sorted(k for k in keys if k.startswith("raw_images/"))
    svgs = sorted(k for k in keys if k.startswith("ground_truth/uid/"))
    assert raw and all(k.startswith(f"raw_images/{device}/{device}.") and k.endswith(".jpg") for k in raw)
    for key in raw:
        name = parse_image_name(key)
        assert name.device == device
    assert {
        f"ground_truth/{n}" for n in ("manifest.json", "tracks.parquet", "frames.parquet", "images.parquet")
    } <= keys
    assert "ground_truth/itc/database.db" in keys
    ok = small_run.images[small_run.images.status == "ok"]
    assert sorted(ok.svg_key) == svgs
    assert len(raw) == (small_run.images.status != "missing").sum()


def test_manifest_summarises_the_tables(small_run: Run) -> None:
    manifest = json.loads(small_run.store.get_bytes("ground_truth/manifest.json"))
    summary = manifest["summary"]
    assert summary == small_run.summary
    images = small_run.images
    assert summary["scheduled_frames"] == len(images) == 2 * 72
    assert summary["missing_frames"] == (images.status == "missing").sum() > 0
    assert summary["corrupt_images"] == (images.status == "corrupt").sum() == 2
    assert summary["insects"] == len(small_run.tracks)
    assert summary["instances"] == (small_run.frames.status == "visible").sum() == images.n_instances.sum()
    assert sorted(c["key"] for c in manifest["corrupt_images"]) == sorted(images[images.status == "corrupt"].key)
    assert manifest["config"]["seed"] == small_run.config.seed
    assert set(summary["taxa"]) <= {t for t in small_run.tracks.taxon}


def test_frame_schedule_is_about_every_20_minutes(small_run: Run) -> None:
    times = small_run.images.sort_values("datetime").datetime
    gaps = times.diff().dt.total_seconds().dropna()
    assert gaps.between(1200 - 120, 1200 + 120).all()
    assert gaps.std() > 0  # jittered
    assert (small_run.images.datetime.dt.microsecond == 0).all()


def test_svgs_embed_the_raw_bytes_and_hold_the_visible_polygons(small_run: Run) -> None:
    frames = small_run.frames
    for _, image in small_run.images[small_run.images.status == "ok"].iterrows():
        raw = small_run.store.get_bytes(image.key)
        doc = read_uid_svg(small_run.store.get_bytes(image.svg_key))
        assert not doc.warnings
        assert doc.md5 == hashlib.md5(raw).hexdigest() == image.md5
        assert (doc.width, doc.height) == (640, 480)
        assert doc.metadata["device"] == image.device
        visible = frames[(frames.image_stem == image.stem) & (frames.status == "visible")].sort_values("instance_index")
        assert len(doc.instances) == len(visible) == image.n_instances
        for inst, (_, row) in zip(doc.instances, visible.iterrows(), strict=True):
            expected = np.array([list(p) for p in row.polygon], np.int32)
            np.testing.assert_array_equal(inst.polygon, expected)
            assert inst.name == "insect" and inst.stroke == "#0000ff"


def test_tracks_are_chronological_and_continuous_except_documented_gaps(small_run: Run) -> None:
    images = small_run.images.sort_values("datetime")
    slots = list(images.datetime)
    frames = small_run.frames
    n_gap_kinds: set[str] = set()
    crossing_days = 0
    for _, track in small_run.tracks.iterrows():
        rows = frames[frames.insect_id == track.insect_id]
        times = list(rows.datetime)
        assert times == sorted(times)
        # one row per scheduled frame from the first to the last frame the insect is on the card
        i0, i1 = slots.index(times[0]), slots.index(times[-1])
        assert times == slots[i0 : i1 + 1], track.insect_id
        assert track.capture_datetime == rows[rows.status == "visible"].datetime.min()
        assert track.last_visible_datetime == rows[rows.status == "visible"].datetime.max()
        inside = rows[(rows.datetime > track.capture_datetime) & (rows.datetime < track.last_visible_datetime)]
        expected_gaps = [(t, s) for t, s in zip(inside.datetime, inside.status, strict=True) if s != "visible"]
        gaps = [(g["datetime"], g["reason"]) for g in track.gaps]
        assert [(pd.Timestamp(t), s) for t, s in gaps] == [(pd.Timestamp(t), s) for t, s in expected_gaps]
        n_gap_kinds.update(s for _, s in gaps)
        counts = rows.status.value_counts()
        assert track.n_visible == counts.get("visible", 0) >= 1
        assert track.n_occluded == counts.get("occluded", 0)
        assert track.n_missing == counts.get("missing_frame", 0)
        assert track.n_corrupt == counts.get("corrupt_frame", 0)
        assert track.n_frames == len(rows)
        assert track.arrival_datetime <= track.first_frame_datetime
        crossing_days += rows.datetime.dt.date.nunique() > 1
    assert {"occluded", "missing_frame"} <= n_gap_kinds
    assert crossing_days > 0  # insects stay on the card across midnight


def test_frame_status_matches_the_image_status(small_run: Run) -> None:
    merged = small_run.frames.merge(
        small_run.images[["datetime", "status"]].rename(columns={"status": "image_status"}), on="datetime"
    )
    expect = {
        "missing": {"missing_frame"},
        "corrupt": {"corrupt_frame", "out_of_frame"},
        "ok": {"visible", "occluded", "out_of_frame"},
    }
    for status, allowed in expect.items():
        assert set(merged[merged.image_status == status].status) <= allowed
    assert merged[merged.status == "missing_frame"].polygon.isna().all()
    assert merged[merged.status == "missing_frame"].image_stem.isna().all()


def test_fates_escape_and_decay(small_run: Run) -> None:
    tracks, frames = small_run.tracks, small_run.frames
    escaped = tracks[tracks.fate == "escapes"]
    assert len(escaped) > 0
    for _, track in escaped.iterrows():
        assert track.last_frame_datetime < track.escape_datetime
    decaying = tracks[(tracks.fate == "decays") & (tracks.n_visible > 30)]
    ramps = 0
    for insect in decaying.insect_id:
        decay = frames[frames.insect_id == insect].decay.to_numpy()
        assert np.all(np.diff(decay) >= 0)
        ramps += decay[-1] > 0
    assert ramps > 0
    assert (tracks[tracks.fate == "stays"].escape_datetime.isna()).all()


def test_occluded_insects_are_absent_from_their_svg(small_run: Run) -> None:
    frames = small_run.frames
    occluded = frames[frames.status == "occluded"]
    assert len(occluded) > 0
    for stem in occluded.image_stem.unique()[:10]:
        image = small_run.images[small_run.images.stem == stem].iloc[0]
        doc = read_uid_svg(small_run.store.get_bytes(image.svg_key))
        polys = {tuple(map(tuple, inst.polygon.tolist())) for inst in doc.instances}
        for _, row in occluded[occluded.image_stem == stem].iterrows():
            assert tuple(tuple(p) for p in row.polygon) not in polys


def test_itc_database_labels_every_insect(small_run: Run) -> None:
    path = small_run.root / "ground_truth" / "itc" / "database.db"
    rows = read_annotations(path)
    tracks = small_run.tracks.set_index("insect_id")
    assert sorted(r.tuboid_id for r in rows) == sorted(tracks.index)
    for r in rows:
        assert r.taxon == tracks.loc[r.tuboid_id, "taxon"]
        assert r.user == "stickypi-synth"
        assert r.datetime == tracks.loc[r.tuboid_id, "capture_datetime"].timestamp()
        # shaped like a SIM tuboid id: <device>.<start>.<end>.<version>.<NNNN>
        device, start, end, version, number = r.tuboid_id.split(".")
        assert device == small_run.config.device_ids[0] and version == "synth" and len(number) == 4
    taxa = {r.taxon for r in rows}
    assert "Insecta.Diptera.Drosophilidae.Drosophila.Drosophila suzukii" in taxa
    assert len(taxa) == 6


def test_corrupt_frames_do_not_decode(small_run: Run) -> None:
    corrupt = small_run.images[small_run.images.status == "corrupt"]
    assert len(corrupt) == 2
    for _, image in corrupt.iterrows():
        data = small_run.store.get_bytes(image.key)
        assert image.corruption in ("truncated", "garbled", "zeroed")
        assert not data or cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None
        assert pd.isna(image.svg_key)
        assert not small_run.store.exists(f"ground_truth/uid/{image.device}/{image.stem}.svg")
    for _, image in small_run.images[small_run.images.status == "ok"].head(5).iterrows():
        data = small_run.store.get_bytes(image.key)
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)


def test_images_carry_sensor_exif_for_ingestion(small_run: Run) -> None:
    from stickypi_assets.pipeline.raw_images import inspect_jpeg

    image = small_run.images[small_run.images.status == "ok"].iloc[0]
    decoded = inspect_jpeg(small_run.store.get_bytes(image.key))
    assert (decoded.width, decoded.height) == (640, 480)
    assert decoded.temperature_c == image.temperature_c
    assert decoded.humidity_pct == image.humidity_pct


def test_lighting_changes_over_the_day(small_run: Run) -> None:
    images = small_run.images[small_run.images.status == "ok"]
    assert {"day", "night_flash", "twilight"} <= set(images.lighting)

    def mean_bgr(kind: str) -> np.ndarray:
        rows = images[images.lighting == kind].head(3)
        pics = [cv2.imdecode(np.frombuffer(small_run.store.get_bytes(k), np.uint8), 1) for k in rows.key]
        return np.mean([p.reshape(-1, 3).mean(axis=0) for p in pics], axis=0)

    day, flash = mean_bgr("day"), mean_bgr("night_flash")
    assert flash[0] / flash[2] > 1.15 * day[0] / day[2]  # the flash is bluer than daylight
    if (images.lighting == "night_dark").any():
        assert mean_bgr("night_dark").mean() < 0.3 * day.mean()
    assert images.shake_dx.abs().max() > 0 or images.shake_dy.abs().max() > 0
