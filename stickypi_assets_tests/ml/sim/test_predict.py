"""Inference entry points: a bundle's matcher on a folder of UID SVGs, and one device-day with state."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch

from stickypi_assets.formats.tuboids import read_tuboids
from stickypi_assets.formats.uid_svg import UidSvg, write_uid_svg
from stickypi_assets.ml.bundles import CONFIG_RELPATH, WEIGHTS_RELPATH
from stickypi_assets.ml.sim.config import SimConfig, save_config
from stickypi_assets.ml.sim.model import SiameseNet, save_checkpoint, weights_version
from stickypi_assets.ml.sim.predict import load_matcher, predict_dir, track_day
from stickypi_assets_tests.ml.sim.helpers import DEVICE, T0, TINY_NET, IouMatcher, card, frame, jpeg, square


def bundle(tmp_path):
    config = SimConfig(**TINY_NET, match_threshold=0.0, stitch_threshold=0.0, gating_radius_px=30)
    torch.manual_seed(0)
    save_checkpoint(SiameseNet.from_config(config), tmp_path / "bundle" / WEIGHTS_RELPATH, config)
    save_config(config, tmp_path / "bundle" / CONFIG_RELPATH)
    return tmp_path / "bundle"


def write_series(directory, n: int, centres, prefix: str = "", frames=None):
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(n) if frames is None else frames:
        when = T0 + timedelta(minutes=20 * k)
        img = card(centres=centres, seed=k)
        doc = UidSvg(jpeg_bytes=jpeg(img), width=img.shape[1], height=img.shape[0], metadata={},
                     instances=[square(x, y) for x, y in centres])
        write_uid_svg(doc, directory / f"{prefix}{DEVICE}.{when:%Y-%m-%d_%H-%M-%S}.svg")


def test_predict_dir(tmp_path):
    b = bundle(tmp_path)
    _, _, version = load_matcher(b)
    assert version == weights_version(b / WEIGHTS_RELPATH)
    target = tmp_path / "target"
    write_series(target, 5, [(40, 40), (150, 100)])
    out = predict_dir(b, target)
    tuboids, failures = read_tuboids(target / "tuboids")
    assert failures == [] and len(tuboids) == 2 and all(len(t.frames) == 5 for t in tuboids)
    assert tuboids[0].id.version == version
    assert out.video is not None and out.video.exists()
    assert out.video.parent == target / "tuboids" / tuboids[0].id.series_id
    with pytest.raises(FileExistsError):
        predict_dir(b, target)
    # zero tuboids (the original crashed, defect 19)
    empty = tmp_path / "empty"
    write_series(empty, 3, [])
    assert predict_dir(b, empty).records == []


def test_predict_dir_uses_curated_a_files_once(tmp_path, capsys):
    b = bundle(tmp_path)
    target = tmp_path / "target"
    write_series(target, 5, [(40, 40), (150, 100)])
    # frame 2 was curated (outlines moved by 4 px); frame 5 only exists as a curated file
    write_series(target, 0, [(44, 40), (154, 100)], prefix="a_", frames=[2, 5])
    out = predict_dir(b, target, progress=True)
    err = capsys.readouterr().err
    assert "sim read" in err and "6/6" in err and "sim track" in err
    tuboids, failures = read_tuboids(target / "tuboids")
    assert failures == [] and len(tuboids) == 2 and len(out.records) == 2
    for t in tuboids:
        stems = [f.stem for f in t.frames]
        assert len(stems) == 6 and len(set(stems)) == 6  # every image once
        assert [round(f.centroid_x) - round(t.frames[0].centroid_x) for f in t.frames] == [0, 0, 4, 0, 0, 4]


def test_track_day_rejects_frames_outside_the_day():
    frames = [frame(k, [(10, 10)]) for k in range(3)]
    with pytest.raises(ValueError, match="outside the day"):
        track_day(frames, DEVICE, T0 + timedelta(hours=1), IouMatcher(), SimConfig())
    day = track_day(frames, DEVICE, T0, IouMatcher(), SimConfig(min_tuboid_frames=3), version="v1")
    assert len(day.result.tuboids) == 1 and day.result.state.model_version == "v1"
    assert day.result.state.end == T0 + timedelta(days=1)
