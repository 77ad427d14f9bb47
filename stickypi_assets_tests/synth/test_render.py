"""Ground-truth outlines coincide with what was drawn; sprites of each taxon are usable; real cut-outs work."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import DeviceRenderer, SynthConfig, generate, render_ground_truth_preview
from stickypi_assets.synth.insects import ALPHA_THRESHOLD, load_real_pool, procedural_sprite
from stickypi_assets.synth.render import outline, place_sprite
from stickypi_assets.synth.taxa import REAL_TAXON, TAXA
from stickypi_assets_tests.conftest import stickypi_path

TINY = SynthConfig(devices=1, days=1, seed=5, width=640, height=480, arrival_rate_day=10, arrival_rate_night=4)


def _raster(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [polygon.reshape(-1, 1, 2).astype(np.int32)], 1)
    return mask.astype(bool)


def test_ground_truth_polygons_cover_the_pasted_sprites() -> None:
    renderer = DeviceRenderer(TINY, 0)
    ious = []
    for frame in renderer.frames(0):
        if frame.image is None or frame.slot.index % 6:
            continue
        for _, placed in frame.visible:
            truth = placed.mask(TINY.width, TINY.height)
            gt = _raster(placed.polygon, truth.shape)
            ious.append((gt & truth).sum() / (gt | truth).sum())
    assert len(ious) > 100
    assert min(ious) >= 0.8
    assert np.mean(ious) >= 0.9


def test_insect_pixels_lie_inside_ground_truth_and_nowhere_else() -> None:
    """Render the same device-day with and without insects (everything else is keyed independently of the
    arrivals, so the two are identical but for the insects): strong changes are inside ground-truth
    polygons (or the glare hiding an occluded insect); outside, only faint leg tips, wing fringes and
    contact shadows; and every visible polygon covers changed pixels."""
    empty = replace(TINY, arrival_rate_day=0, arrival_rate_night=0)
    full_frames = DeviceRenderer(TINY, 0).frames(0)
    empty_frames = DeviceRenderer(empty, 0).frames(0)
    checked = 0
    for full, bare in zip(full_frames, empty_frames, strict=True):
        assert full.slot == bare.slot and full.shake == bare.shake and full.lighting == bare.lighting
        if full.image is None or full.slot.index % 4:
            continue
        assert not bare.visible
        diff = np.abs(full.image.astype(np.int16) - bare.image.astype(np.int16)).max(axis=2)
        allowed = np.zeros(diff.shape, np.uint8)
        for row in full.rows:
            if row["polygon"] is not None:
                poly = np.array(row["polygon"], np.int32)
                cv2.fillPoly(allowed, [poly.reshape(-1, 1, 2)], 1)
                if row["status"] == "occluded":  # the glare covers a box around the insect
                    x, y, w, h = cv2.boundingRect(poly)
                    pad = max(w, h) + 8
                    cv2.rectangle(allowed, (x - pad, y - pad), (x + w + pad, y + h + pad), 1, -1)
        near = cv2.dilate(allowed, np.ones((3, 3), np.uint8)).astype(bool)
        around = cv2.dilate(allowed, np.ones((9, 9), np.uint8)).astype(bool)
        assert diff[~around].max(initial=0) <= 90  # shadows and sub-threshold leg tips only
        strong = diff > 100
        assert strong[near].sum() >= 0.99 * strong.sum()
        for _, placed in full.visible:
            inside = _raster(placed.polygon, diff.shape)
            assert (diff[inside] > 3).mean() > 0.5
        checked += 1
    assert checked > 10


@pytest.mark.parametrize("taxon", sorted(TAXA))
def test_every_taxon_draws_a_distinct_insect(taxon: str) -> None:
    sizes = []
    for seed in range(3):
        sprite = procedural_sprite(taxon, seed, px_per_mm=14.0)
        assert sprite.prem.shape[:2] == sprite.alpha.shape == sprite.shadow.shape
        assert sprite.alpha.max() <= 1.0 and sprite.prem.max() <= 255.0 + 1e-3
        assert np.all(sprite.prem <= sprite.alpha[..., None] * 255.0 + 1e-3)  # premultiplied
        assert sprite.taxon == TAXA[taxon].taxon
        poly = outline(sprite.alpha)
        assert poly is not None and cv2.contourArea(poly) > 0
        length = max(cv2.minAreaRect(poly.reshape(-1, 1, 2))[1])
        spec = TAXA[taxon]
        assert 0.8 * spec.length_mm[0] * 14 <= length <= spec.extent * spec.length_mm[1] * 14 * 1.15
        sizes.append(sprite.area)
    assert len(set(sizes)) == 3  # individuals differ


def test_taxa_differ_in_colour_and_size() -> None:
    stats = {}
    for taxon in TAXA:
        sprite = procedural_sprite(taxon, 1, px_per_mm=14.0)
        solid = sprite.alpha >= 0.9
        colour = (sprite.prem[solid] / sprite.alpha[solid, None]).mean(axis=0)
        stats[taxon] = (colour, sprite.area)
    assert stats["coccinellidae"][0][2] > 1.5 * stats["coccinellidae"][0][1]  # red
    assert stats["cicadellidae"][0][1] > stats["cicadellidae"][0][2]  # green
    assert stats["sciaridae"][0].mean() < 60  # dark
    assert stats["muscidae"][1] > 3 * stats["drosophila_suzukii"][1] > 0


def test_rotation_and_clipping_keep_the_outline_on_the_alpha() -> None:
    sprite = procedural_sprite("muscidae", 3, px_per_mm=14.0)
    for angle, (x, y) in [(0, (300.25, 200.5)), (37.5, (300.0, 200.0)), (200, (5.0, 100.0)), (90, (639.0, 479.0))]:
        placed = place_sprite(sprite, x, y, angle, 0.0, 640, 480)
        assert placed is not None and placed.polygon is not None
        truth = placed.mask(640, 480)
        gt = _raster(placed.polygon, truth.shape)
        assert (gt & truth).sum() / (gt | truth).sum() >= 0.8
        assert placed.polygon[:, 0].min() >= 0 and placed.polygon[:, 1].min() >= 0
        assert placed.polygon[:, 0].max() < 640 and placed.polygon[:, 1].max() < 480
    assert place_sprite(sprite, -500, -500, 0, 0, 640, 480) is None
    decayed = place_sprite(sprite, 300, 200, 0, 1.0, 640, 480)
    fresh = place_sprite(sprite, 300, 200, 0, 0.0, 640, 480)
    assert decayed is not None and fresh is not None
    assert (decayed.alpha >= ALPHA_THRESHOLD).sum() <= (fresh.alpha >= ALPHA_THRESHOLD).sum()


def test_preview_draws_the_outlines() -> None:
    frame = next(f for f in DeviceRenderer(TINY, 0).frames(0) if f.image is not None and f.visible)
    preview = render_ground_truth_preview(frame.image, frame.instances, labels=[p.taxon_key for p, _ in frame.visible])
    assert preview.shape == frame.image.shape and preview.dtype == np.uint8
    changed = np.any(preview != frame.image, axis=2)
    for inst in frame.instances:
        x, y = inst.polygon[0]
        assert changed[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].any()
    assert not np.shares_memory(preview, frame.image)


def test_real_sprites_from_one_uid_svg(tmp_path: Path) -> None:
    source = stickypi_path("uid", "5595c586.2020-07-15_15-57-38.svg")
    sprites_dir = tmp_path / "sprites"
    sprites_dir.mkdir()
    shutil.copy(source, sprites_dir / source.name)
    pool = load_real_pool(str(sprites_dir))
    assert len(pool.sources) == 1 and len(pool.sprites) > 10
    config = SynthConfig(
        devices=1, days=1, seed=2, width=648, height=486, sprites_dir=sprites_dir, arrival_rate_day=6, corrupt_frames=1
    )
    summary = generate(config, LocalObjectStore(tmp_path / "out"))
    assert summary["taxa"] == {REAL_TAXON: summary["insects"]} and summary["insects"] > 10
    tracks = pd.read_parquet(tmp_path / "out" / "ground_truth" / "tracks.parquet")
    assert tracks.sprite_source.str.startswith(f"real:{source.stem}#").all()
    assert (tracks.type == "Insecta").all() and (tracks.order == "").all()
    images = pd.read_parquet(tmp_path / "out" / "ground_truth" / "images.parquet")
    ok = images[images.status == "ok"].iloc[-1]
    doc = read_uid_svg((tmp_path / "out" / ok.svg_key).read_bytes())
    assert len(doc.instances) == ok.n_instances > 0 and not doc.warnings
    image = doc.decode_image()
    assert image.shape == (486, 648, 3)
