"""Configuration checks, the ``synth`` sub-command, and one full-resolution smoke test."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from stickypi_assets.cli.synth import add_parser, config_from_args
from stickypi_assets.synth import DeviceRenderer, SynthConfig
from stickypi_assets.synth.generator import corrupt_bytes, encode_jpeg
from stickypi_assets.synth.tracks import day_slots


@pytest.mark.parametrize(
    "kwargs",
    [
        {"taxa": ("muscidae", "unicorn")},
        {"corrupt_frames": 1.5},
        {"corrupt_frames": -1},
        {"devices": 0},
        {"devices": ("0a5bb6f4", "0a5bb6f4")},
        {"devices": ("not-hex!",)},
        {"days": 0},
        {"missing_frame_prob": 1.0},
        {"width": 10},
        {"interval_jitter_s": 600},
        {"start_date": date(2019, 1, 1)},
        {"escape_prob": 0.6, "decay_prob": 0.6},
    ],
)
def test_invalid_configurations_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SynthConfig(**kwargs)


def test_configuration_accepts_strings_and_lists() -> None:
    config = SynthConfig(devices=["0A5BB6F4", "08038ade"], start_date="2021-06-08", taxa=["muscidae"])
    assert config.device_ids == ("0a5bb6f4", "08038ade")
    assert config.start_date == date(2021, 6, 8)
    assert config.taxa == ("muscidae",)
    assert json.loads(json.dumps(config.to_dict()))["devices"] == ["0a5bb6f4", "08038ade"]


def test_corrupt_count_and_probability() -> None:
    counted = SynthConfig(devices=2, days=3, corrupt_frames=4, missing_frame_prob=0.0)
    n = sum(s.status == "corrupt" for d in range(2) for day in range(3) for s in day_slots(counted, d, day))
    assert n == 4
    rate = SynthConfig(devices=1, days=5, corrupt_frames=0.1, missing_frame_prob=0.0)
    slots = [s for day in range(5) for s in day_slots(rate, 0, day)]
    assert 10 <= sum(s.status == "corrupt" for s in slots) <= 60


@pytest.mark.parametrize("kind", ["truncated", "garbled", "zeroed"])
def test_every_corruption_kind_fails_to_decode(kind: str) -> None:
    image = np.full((120, 160, 3), (50, 200, 190), np.uint8)
    data = encode_jpeg(image, 90)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), 1) is not None
    bad = corrupt_bytes(data, kind, np.random.default_rng(0))
    assert not bad or cv2.imdecode(np.frombuffer(bad, np.uint8), 1) is None


def test_cli_writes_a_deployment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="stickypi")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(
        [
            "synth",
            "--devices",
            "2",
            "--days",
            "1",
            "--out",
            str(out),
            "--seed",
            "9",
            "--width",
            "320",
            "--height",
            "240",
            "--corrupt-frames",
            "1",
            "--start",
            "2021-07-01",
            "--no-progress",
        ]
    )
    assert config_from_args(args).start_date == date(2021, 7, 1)
    assert args.func(args) == 0
    manifest = json.loads((out / "ground_truth" / "manifest.json").read_text())
    assert manifest["summary"]["devices"] == 2 and manifest["summary"]["corrupt_images"] == 1
    assert len(list((out / "raw_images").iterdir())) == 2
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--out", str(out), "--corrupt-frames", "2.5"])


def test_full_size_frames() -> None:
    """Smoke test at the camera's resolution (2592 x 1944): a few frames render, encode and decode."""
    config = SynthConfig(devices=1, days=1, seed=1, arrival_rate_day=20, arrival_rate_night=20)
    frames = DeviceRenderer(config, 0).frames(0)
    seen = 0
    for frame in frames:
        if frame.image is None:
            continue
        assert frame.image.shape == (1944, 2592, 3) and frame.image.dtype == np.uint8
        data = encode_jpeg(frame.image, config.jpeg_quality)
        assert 200_000 < len(data) < 4_000_000
        assert cv2.imdecode(np.frombuffer(data, np.uint8), 1).shape == (1944, 2592, 3)
        for inst in frame.instances:
            x, y, w, h = inst.bbox
            assert x >= 0 and y >= 0 and x + w <= 2592 and y + h <= 1944
        seen += 1
        if seen == 8:
            break
    assert frame.instances  # by the eighth frame (~2.5 h) insects have landed
    lengths = [max(inst.bbox[2:]) for inst in frame.instances]
    assert min(lengths) >= 20 and max(lengths) <= 400
