"""predict_image end to end with a model-free detector, and predict_dir's files, names and skipping rules."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import shapely

from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.uid.config import UidConfig, save_config
from stickypi_assets.ml.uid.predict import PredictTimings, load_detector, predict_dir, predict_image
from stickypi_assets.ml.uid.tiling import plan_tiles
from stickypi_assets_tests.ml.uid.helpers import PLUGGED_BLOB, BlobDetector, rectangle, synthetic_card

CONFIG = UidConfig(tile_size=128, tile_overlap=48, edge_margin=8, original_image_padding=16, tile_batch_size=3)
POLYGONS = [
    rectangle(0, 50, 30, 40),  # on the true left edge of the image
    rectangle(100, 90, 60, 40),  # straddles several tile borders
    rectangle(230, 150, 70, 30),  # touches the right edge
    np.array([[40, 150], [80, 160], [60, 200]], dtype=np.int32),  # a triangle
]


def iou(a, b) -> float:
    pa, pb = shapely.Polygon(a), shapely.Polygon(b)
    return pa.intersection(pb).area / pa.union(pb).area


def test_every_insect_found_once_across_tiles():
    card = synthetic_card(300, 220, POLYGONS)
    detector = BlobDetector(score=0.95)
    timings = PredictTimings()
    instances = predict_image(detector, card, CONFIG, timings=timings)
    assert len(instances) == len(POLYGONS)
    for polygon in POLYGONS:
        best = max(iou(polygon, inst.polygon) for inst in instances)
        assert best > 0.9
    for inst in instances:
        assert (inst.name, inst.stroke, inst.fill, inst.value) == ("insect", "#0000ff", "#ff0000", 0)
        assert inst.score == pytest.approx(0.95)
        assert inst.polygon[:, 0].min() >= 0 and inst.polygon[:, 0].max() < 300
    n_tiles = len(plan_tiles(300 + 32, 220 + 32, 128, 48))
    assert sum(detector.calls) == n_tiles and max(detector.calls) <= 3
    assert timings.images == 1 and timings.tiles == n_tiles and timings.model > 0 and timings.postprocess > 0


def test_score_threshold_and_empty_card():
    card = synthetic_card(300, 220, POLYGONS)
    assert predict_image(BlobDetector(score=0.5), card, CONFIG.replace(score_threshold=0.6)) == []
    assert predict_image(BlobDetector(), synthetic_card(300, 220, []), CONFIG) == []
    with pytest.raises(ValueError):
        predict_image(BlobDetector(), card[:, :, 0], CONFIG)


def write_jpg(path, image) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    path.write_bytes(data)
    return data


def test_predict_dir_writes_svgs_next_to_jpegs_and_respects_existing_annotations(tmp_path):
    card = synthetic_card(300, 220, POLYGONS)
    named = tmp_path / "0a5bb6f4" / "0a5bb6f4.2020-06-20_20-19-15.jpg"
    data = write_jpg(named, card)
    write_jpg(tmp_path / "foreign.JPG", card)
    write_jpg(tmp_path / "sub" / "curated.jpg", card)
    (tmp_path / "sub" / "a_curated.svg").write_text("manual")  # a curated annotation protects its JPEG

    written = predict_dir(None, tmp_path, detector=BlobDetector(), config=CONFIG)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "0a5bb6f4/0a5bb6f4.2020-06-20_20-19-15.svg",
        "foreign.svg",
    ]
    doc = read_uid_svg(named.with_suffix(".svg"))
    assert doc.jpeg_bytes == data and len(doc.instances) == len(POLYGONS)
    assert doc.metadata["device"] == "0a5bb6f4" and doc.metadata["datetime"] == "2020-06-20_20-19-15"
    assert doc.metadata["algo_name"] == "universal-insect-detector" and doc.metadata["md5"] == doc.md5
    foreign = read_uid_svg(tmp_path / "foreign.svg")
    assert foreign.metadata["device"] is None and foreign.metadata["datetime"] is None

    again = predict_dir(None, tmp_path, detector=BlobDetector(), config=CONFIG)
    assert again.written == [] and again.failed == []  # nothing new
    assert sorted(p.name for p in again.skipped) == ["0a5bb6f4.2020-06-20_20-19-15.jpg", "curated.jpg", "foreign.JPG"]
    again = predict_dir(None, tmp_path, detector=BlobDetector(), config=CONFIG, force=True)
    assert len(again) == 3 and again.skipped == []  # force also overrides the a_ protection


def test_de_novo_needs_no_bundle_and_writes_no_paths(tmp_path):
    write_jpg(tmp_path / "x.jpg", synthetic_card(64, 48, []))
    (svg,) = predict_dir(None, tmp_path, de_novo=True)
    doc = read_uid_svg(svg)
    assert doc.instances == [] and "algo_name" not in doc.metadata and doc.width == 64


def test_bundle_without_weights(tmp_path):
    with pytest.raises(ValueError):
        predict_dir(None, tmp_path)
    small = UidConfig(backbone="resnet18_fpn", fpn_channels=32, box_head_dim=64, mask_head_channels=32)
    save_config(small, tmp_path / "b" / "config" / "config.yaml")
    with pytest.raises(FileNotFoundError):
        load_detector(tmp_path / "b")
    detector, config, version = load_detector(tmp_path / "b", require_weights=False)
    assert version is None and config.backbone == "resnet18_fpn" and hasattr(detector, "predict_batch")


def test_a_bundle_plugs_in_another_detector_by_config(tmp_path):
    bundle = tmp_path / "b"
    plugged = CONFIG.replace(detector=PLUGGED_BLOB)  # registered by the helpers module
    save_config(plugged, bundle / "config" / "config.yaml")
    (bundle / "output").mkdir()
    (bundle / "output" / "model_final.pth").write_bytes(b"third-party weights")
    detector, config, version = load_detector(bundle)
    assert type(detector).__name__ == "PluggedBlobDetector" and detector.weights == b"third-party weights"
    assert config.detector == plugged.detector and len(version) == 32
    image = synthetic_card(300, 220, POLYGONS)
    cv2.imwrite(str(tmp_path / "0a5bb6f4.2020-06-20_10-00-00.jpg"), image)
    (svg,) = predict_dir(bundle, tmp_path)  # the CLI and the asset load bundles the same way
    assert len(read_uid_svg(svg).instances) == len(POLYGONS)
    for bad in ("yolo", "no_such_module:factory", "stickypi_assets_tests.ml.uid.helpers:nothing"):
        with pytest.raises(ValueError, match="DETECTOR"):
            save_config(CONFIG.replace(detector=bad), bundle / "config" / "config.yaml")
            load_detector(bundle)


class FailsOnWhite(BlobDetector):
    """BlobDetector that crashes on tiles holding white pixels (a model failing on one image)."""

    def predict_batch(self, images):
        if any((im > 240).all(axis=2).any() for im in images):
            raise RuntimeError("boom")
        return super().predict_batch(images)


def test_bad_jpegs_are_reported_and_the_others_written(tmp_path, capsys):
    card = synthetic_card(300, 220, POLYGONS)
    write_jpg(tmp_path / "a.jpg", card)
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "c.jpg").write_bytes(b"")
    write_jpg(tmp_path / "d.jpg", synthetic_card(120, 100, POLYGONS[:1], colour=(255, 255, 255)))  # model fails
    write_jpg(tmp_path / "e.jpg", card)
    (tmp_path / "e.svg").write_text("kept")

    result = predict_dir(None, tmp_path, detector=FailsOnWhite(), config=CONFIG, progress=True)
    assert [p.name for p in result.written] == ["a.svg"] and list(result) == result.written
    assert [p.name for p in result.skipped] == ["e.jpg"]
    assert [p.name for p, _ in result.failed] == ["b.jpg", "c.jpg", "d.jpg"]
    assert "cannot decode" in result.failed[0][1] and "empty file" in result.failed[1][1]
    assert result.failed[2][1] == "RuntimeError: boom"
    # no SVG (not even a partial or temporary one) for the failures; the existing one untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".jpg") == ["a.svg", "e.svg"]
    assert (tmp_path / "e.svg").read_text() == "kept"
    assert len(read_uid_svg(tmp_path / "a.svg").instances) == len(POLYGONS)
    assert "uid predict-dir" in capsys.readouterr().err  # the progress bar


def test_predict_dir_is_quiet_by_default(tmp_path, capsys):
    write_jpg(tmp_path / "x.jpg", synthetic_card(64, 48, []))
    assert len(predict_dir(None, tmp_path, de_novo=True)) == 1
    assert capsys.readouterr().err == ""
