"""Candidate SiamSVGs: consecutive pairs, IoU pre-grouping, curated a_ files, round trip through read_sim_svg."""

from __future__ import annotations

import pytest

from stickypi_assets.formats.sim_svg import read_sim_svg
from stickypi_assets.formats.uid_svg import UidSvg, read_uid_svg, write_uid_svg
from stickypi_assets.ml.sim.candidates import annotation_files, make_candidates
from stickypi_assets_tests.ml.sim.helpers import DEVICE, card, jpeg, square


def write_image(directory, stem: str, centres, seed: int, half: int = 10):
    img = card(centres=centres, seed=seed)
    doc = UidSvg(jpeg_bytes=jpeg(img), width=img.shape[1], height=img.shape[0], metadata={"seed": seed},
                 instances=[square(x, y, half=half) for x, y in centres])
    write_uid_svg(doc, directory / f"{stem}.svg")


def test_candidates_round_trip(tmp_path):
    write_image(tmp_path, f"{DEVICE}.2020-06-20_20-19-15", [(40, 40), (150, 100)], seed=0)
    # (41, 40): IoU 420/462 = 0.91 with (40, 40) → grouped; (150, 130) does not overlap (150, 100)
    write_image(tmp_path, f"{DEVICE}.2020-06-20_20-37-59", [(150, 130), (41, 40)], seed=1)
    write_image(tmp_path, f"{DEVICE}.2020-06-20_20-56-43", [(41, 40)], seed=2)
    written = make_candidates(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in written]
    assert names == [
        f"candidates/{DEVICE}/{DEVICE}.2020-06-20_20-19-15.2020-06-20_20-37-59.svg",
        f"candidates/{DEVICE}/{DEVICE}.2020-06-20_20-37-59.2020-06-20_20-56-43.svg",
    ]
    pair = read_sim_svg(written[0])
    assert pair.groups == [(0, 1)]
    assert len(pair.frame0.instances) == 2 and len(pair.frame1.instances) == 2
    assert pair.device == DEVICE and pair.datetime1 > pair.datetime0
    originals = [read_uid_svg(tmp_path / f"{DEVICE}.2020-06-20_20-19-15.svg"),
                 read_uid_svg(tmp_path / f"{DEVICE}.2020-06-20_20-37-59.svg")]
    assert pair.frame0.jpeg_bytes == originals[0].jpeg_bytes and pair.frame1.jpeg_bytes == originals[1].jpeg_bytes
    assert pair.frame1.instances[1] == originals[1].instances[1]
    assert read_sim_svg(written[1]).groups == [(1, 0)]

    with pytest.raises(FileExistsError):
        make_candidates(tmp_path)
    assert len(make_candidates(tmp_path, filter_k=2, force=True)) == 1  # pairs 0, 2, ... only
    assert len(make_candidates(tmp_path, force=True, prematch=False)) == 2
    assert read_sim_svg(written[0]).groups == []


def test_candidates_need_two_valid_names(tmp_path):
    write_image(tmp_path, f"{DEVICE}.2020-06-20_20-19-15", [(40, 40)], seed=0)
    with pytest.raises(ValueError, match="at least two"):
        make_candidates(tmp_path)
    (tmp_path / "notes.svg").write_text("<svg/>")
    with pytest.raises(ValueError, match="names"):
        make_candidates(tmp_path)


def test_pairs_across_devices_are_skipped(tmp_path):
    write_image(tmp_path, f"{DEVICE}.2020-06-20_20-19-15", [(40, 40)], seed=0)
    write_image(tmp_path, "ffffffff.2020-06-20_20-00-00", [(40, 40)], seed=1)
    write_image(tmp_path, "ffffffff.2020-06-20_20-20-00", [(40, 40)], seed=2)
    written = make_candidates(tmp_path)
    assert [p.parent.name for p in written] == ["ffffffff"]


@pytest.mark.parametrize("device", [DEVICE, "afbd6f68"])  # 'a_afbd…' sorts before 'afbd…', '0a5b…' before 'a_0a5b…'
def test_curated_a_files_replace_their_plain_svg(tmp_path, device, capsys):
    t = ["2020-06-20_20-19-15", "2020-06-20_20-37-59", "2020-06-20_20-56-43"]
    write_image(tmp_path, f"{device}.{t[0]}", [(40, 40)], seed=0)
    write_image(tmp_path, f"{device}.{t[1]}", [(41, 40)], seed=1)  # superseded by the curated file below
    write_image(tmp_path, f"a_{device}.{t[1]}", [(41, 40), (150, 100)], seed=11)
    write_image(tmp_path, f"a_{device}.{t[2]}", [(150, 101)], seed=2)  # curated only
    assert [(stem, p.name) for stem, p in annotation_files(tmp_path)] == [
        (f"{device}.{t[0]}", f"{device}.{t[0]}.svg"),
        (f"{device}.{t[1]}", f"a_{device}.{t[1]}.svg"),
        (f"{device}.{t[2]}", f"a_{device}.{t[2]}.svg"),
    ]
    written = make_candidates(tmp_path, progress=True)
    assert [p.name for p in written] == [f"{device}.{t[0]}.{t[1]}.svg", f"{device}.{t[1]}.{t[2]}.svg"]
    first, second = (read_sim_svg(p) for p in written)
    curated = read_uid_svg(tmp_path / f"a_{device}.{t[1]}.svg")
    assert first.frame1.jpeg_bytes == curated.jpeg_bytes and len(first.frame1.instances) == 2
    assert second.frame0.jpeg_bytes == curated.jpeg_bytes
    assert first.groups == [(0, 0)] and second.groups == [(1, 0)]
    assert "sim make-candidates" in capsys.readouterr().err


def test_an_unreadable_svg_costs_its_pairs_only(tmp_path, caplog):
    write_image(tmp_path, f"{DEVICE}.2020-06-20_20-19-15", [(40, 40)], seed=0)
    write_image(tmp_path, f"{DEVICE}.2020-06-20_20-37-59", [(41, 40)], seed=1)
    (tmp_path / f"{DEVICE}.2020-06-20_20-56-43.svg").write_text("<svg><g>not closed")
    write_image(tmp_path, f"{DEVICE}.2020-06-20_21-15-27", [(41, 41)], seed=2)
    write_image(tmp_path, f"{DEVICE}.2020-06-20_21-34-11", [(42, 41)], seed=3)
    with caplog.at_level("WARNING", logger="stickypi_assets.ml.sim.candidates"):
        written = make_candidates(tmp_path)
    assert [p.name for p in written] == [
        f"{DEVICE}.2020-06-20_20-19-15.2020-06-20_20-37-59.svg",
        f"{DEVICE}.2020-06-20_21-15-27.2020-06-20_21-34-11.svg",
    ]
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert len(skips) == 2 and all("not well-formed XML" in m for m in skips)  # the two pairs it is part of
