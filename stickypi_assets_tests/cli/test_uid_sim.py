"""`stickypi uid predict-dir` and `stickypi sim make-candidates | predict-dir` driven through ``cli.main``.

Small images only (<= 256 px), so each test runs in seconds on 2 cores.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stickypi_assets.cli import main
from stickypi_assets.formats.sim_svg import read_sim_svg
from stickypi_assets.formats.split import md5_file
from stickypi_assets.formats.uid_svg import UidSvg, read_uid_svg, write_uid_svg
from stickypi_assets_tests.conftest import stickypi_path
from stickypi_assets_tests.ml.sim.helpers import T0, TINY_NET, card, jpeg, square

DEVICE = "0a5bb6f4"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield


def write_jpg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    path.write_bytes(buf.tobytes())


def stem(k: int) -> str:
    return f"{DEVICE}.{T0 + timedelta(minutes=20 * k):%Y-%m-%d_%H-%M-%S}"


def jpeg_folder(root: Path) -> Path:
    """Three good JPEGs (one in a sub-folder), one corrupt, one protected by a curated ``a_`` annotation."""
    write_jpg(root / f"{stem(0)}.jpg", card(200, 160, [(50, 50)], seed=0))
    write_jpg(root / f"{stem(1)}.jpg", card(200, 160, [(52, 50)], seed=1))
    write_jpg(root / "sub" / "foreign.jpg", card(120, 90, [], seed=2))
    (root / f"{stem(2)}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    write_jpg(root / f"{stem(3)}.jpg", card(200, 160, [], seed=3))
    (root / f"a_{stem(3)}.svg").write_text("curated by hand")
    return root


def test_uid_predict_dir_de_novo_reports_a_corrupt_jpeg_and_goes_on(tmp_path: Path, capsys):
    target = jpeg_folder(tmp_path)
    assert main(["uid", "predict-dir", "--target", str(target), "--de-novo"]) == 1
    captured = capsys.readouterr()
    assert "3 written, 1 skipped (annotation exists), 1 failed" in captured.out
    assert f"failed {target / f'{stem(2)}.jpg'}: ValueError: cannot decode image" in captured.out
    assert "uid predict-dir" in captured.err  # the progress bar
    for svg in (f"{stem(0)}.svg", f"{stem(1)}.svg", "sub/foreign.svg"):
        doc = read_uid_svg(target / svg)
        assert doc.instances == [] and "algo_name" not in doc.metadata
    assert read_uid_svg(target / f"{stem(0)}.svg").metadata["device"] == DEVICE
    assert not (target / f"{stem(2)}.svg").exists() and not list(target.glob(".*.tmp"))
    assert (target / f"a_{stem(3)}.svg").read_text() == "curated by hand" and not (target / f"{stem(3)}.svg").exists()

    # a second run skips what exists; once the corrupt file is gone, the exit status is 0
    (target / f"{stem(2)}.jpg").unlink()
    assert main(["uid", "predict-dir", "-t", str(target), "-n"]) == 0
    assert "0 written, 4 skipped (annotation exists), 0 failed" in capsys.readouterr().out


def test_uid_predict_dir_usage_errors(tmp_path: Path, capsys):
    assert main(["uid", "predict-dir", "--target", str(tmp_path)]) == 2
    assert "--bundle-dir is required" in capsys.readouterr().err
    assert main(["uid", "predict-dir", "--target", str(tmp_path / "nope"), "--de-novo"]) == 1  # data error
    assert "no such folder" in capsys.readouterr().err


def test_uid_predict_dir_with_a_random_bundle(tmp_path: Path, capsys):
    from stickypi_assets.ml.uid.config import UidConfig, save_config
    from stickypi_assets.ml.uid.model import MaskRCNNDetector

    bundle = tmp_path / "bundle"
    config = UidConfig(
        backbone="resnet18_fpn", pretrained="none", fpn_channels=16, box_head_dim=32, mask_head_channels=16,
        score_threshold=0.0, tile_size=256, tile_overlap=32, original_image_padding=16, detections_per_image=5,
        rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20,
    )  # fmt: skip
    save_config(config, bundle / "config" / "config.yaml")
    torch.manual_seed(0)
    MaskRCNNDetector(config).save(bundle / "output" / "model_final.pth")
    target = jpeg_folder(tmp_path / "images")
    assert main(["uid", "predict-dir", "-b", str(bundle), "-t", str(target)]) == 1
    out = capsys.readouterr().out
    assert "3 written, 1 skipped (annotation exists), 1 failed" in out and f"{stem(2)}.jpg" in out
    doc = read_uid_svg(target / f"{stem(1)}.svg")
    assert doc.metadata["algo_name"] == "universal-insect-detector"
    assert doc.metadata["algo_version"] == md5_file(bundle / "output" / "model_final.pth")
    assert all(i.score is not None for i in doc.instances)


def test_uid_predict_dir_on_crops_of_real_cards(tmp_path: Path, capsys):
    svgs = sorted(stickypi_path("uid").glob("*.svg"))[:2]  # skipped when ../shared is absent
    for svg in svgs:
        image = read_uid_svg(svg).decode_image()
        h, w = image.shape[:2]
        write_jpg(tmp_path / f"{svg.stem}.jpg", image[h // 2 : h // 2 + 256, w // 2 : w // 2 + 256])
    (tmp_path / "broken.jpg").write_bytes(b"")
    assert main(["uid", "predict-dir", "-t", str(tmp_path), "--de-novo"]) == 1
    out = capsys.readouterr().out
    assert "2 written, 0 skipped (annotation exists), 1 failed" in out and "broken.jpg" in out
    for svg in svgs:
        doc = read_uid_svg(tmp_path / svg.name)
        assert (doc.width, doc.height) == (256, 256) and doc.metadata["device"] == svg.stem.split(".")[0]


def write_uid(directory: Path, name: str, centres: list[tuple[int, int]], seed: int) -> None:
    img = card(centres=centres, seed=seed)
    doc = UidSvg(jpeg_bytes=jpeg(img), width=img.shape[1], height=img.shape[0], metadata={},
                 instances=[square(x, y) for x, y in centres])
    write_uid_svg(doc, directory / f"{name}.svg")


def curated_folder(root: Path) -> Path:
    """Frames 0-3 of one device; frame 1 has a plain and a curated SVG, frame 3 only a curated one."""
    root.mkdir(parents=True, exist_ok=True)
    write_uid(root, stem(0), [(40, 40), (150, 100)], seed=0)
    write_uid(root, stem(1), [(40, 40)], seed=1)  # superseded
    write_uid(root, f"a_{stem(1)}", [(41, 40), (150, 101)], seed=11)
    write_uid(root, stem(2), [(42, 40), (151, 101)], seed=2)
    write_uid(root, f"a_{stem(3)}", [(42, 41), (151, 102)], seed=3)
    return root


def test_sim_make_candidates_prefers_curated_a_files(tmp_path: Path, capsys):
    target = curated_folder(tmp_path)
    assert main(["sim", "make-candidates", "--target", str(target)]) == 0
    captured = capsys.readouterr()
    assert "wrote 3 candidate pair SVG(s)" in captured.out and "sim make-candidates" in captured.err
    pairs = sorted((target / "candidates" / DEVICE).glob("*.svg"))
    assert [p.name for p in pairs] == [f"{stem(k)}.{stem(k + 1)[len(DEVICE) + 1:]}.svg" for k in range(3)]
    first, second, third = (read_sim_svg(p) for p in pairs)
    curated = read_uid_svg(target / f"a_{stem(1)}.svg")
    assert first.frame1.jpeg_bytes == curated.jpeg_bytes and second.frame0.jpeg_bytes == curated.jpeg_bytes
    assert len(first.frame1.instances) == 2 and first.groups == [(0, 0), (1, 1)]
    assert third.frame1.jpeg_bytes == read_uid_svg(target / f"a_{stem(3)}.svg").jpeg_bytes


def test_sim_predict_dir_prefers_curated_a_files(tmp_path: Path, capsys):
    from stickypi_assets.formats.tuboids import read_tuboids
    from stickypi_assets.ml.bundles import CONFIG_RELPATH, WEIGHTS_RELPATH
    from stickypi_assets.ml.sim.config import SimConfig, save_config
    from stickypi_assets.ml.sim.model import SiameseNet, save_checkpoint

    bundle = tmp_path / "bundle"
    config = SimConfig(**TINY_NET, match_threshold=0.0, stitch_threshold=0.0, gating_radius_px=30)
    torch.manual_seed(0)
    save_checkpoint(SiameseNet.from_config(config), bundle / WEIGHTS_RELPATH, config)
    save_config(config, bundle / CONFIG_RELPATH)
    target = curated_folder(tmp_path / "frames")
    assert main(["sim", "predict-dir", "-b", str(bundle), "-t", str(target)]) == 0
    captured = capsys.readouterr()
    assert "2 tuboid(s), 2 written" in captured.out and "sim read" in captured.err and "4/4" in captured.err
    tuboids, failures = read_tuboids(target / "tuboids")
    assert failures == [] and sorted(len(t.frames) for t in tuboids) == [4, 4]
