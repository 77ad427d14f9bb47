"""Inference entry points: a bundle's matcher on a folder of UID SVGs, and one device-day with state."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch

from stickypi_assets.formats.tuboids import read_tuboids
from stickypi_assets.formats.uid_svg import UidSvg, write_uid_svg
from stickypi_assets.ml.sim.config import CONFIG_RELPATH, WEIGHTS_RELPATH, SimConfig, save_config
from stickypi_assets.ml.sim.model import SiameseNet, save_checkpoint, weights_version
from stickypi_assets.ml.sim.predict import load_matcher, predict_dir, track_day
from stickypi_assets_tests.ml.sim.helpers import DEVICE, T0, TINY_NET, IouMatcher, card, frame, jpeg, square


def bundle(tmp_path):
    config = SimConfig(**TINY_NET, match_threshold=0.0, stitch_threshold=0.0, gating_radius_px=30)
    torch.manual_seed(0)
    save_checkpoint(SiameseNet.from_config(config), tmp_path / "bundle" / WEIGHTS_RELPATH, config)
    save_config(config, tmp_path / "bundle" / CONFIG_RELPATH)
    return tmp_path / "bundle"


def write_series(directory, n: int, centres):
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        when = T0 + timedelta(minutes=20 * k)
        img = card(centres=centres, seed=k)
        doc = UidSvg(jpeg_bytes=jpeg(img), width=img.shape[1], height=img.shape[0], metadata={},
                     instances=[square(x, y) for x, y in centres])
        write_uid_svg(doc, directory / f"{DEVICE}.{when:%Y-%m-%d_%H-%M-%S}.svg")


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


def test_track_day_rejects_frames_outside_the_day():
    frames = [frame(k, [(10, 10)]) for k in range(3)]
    with pytest.raises(ValueError, match="outside the day"):
        track_day(frames, DEVICE, T0 + timedelta(hours=1), IouMatcher(), SimConfig())
    day = track_day(frames, DEVICE, T0, IouMatcher(), SimConfig(min_tuboid_frames=3), version="v1")
    assert len(day.result.tuboids) == 1 and day.result.state.model_version == "v1"
    assert day.result.state.end == T0 + timedelta(days=1)
