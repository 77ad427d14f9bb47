"""MC-dropout passes of the UID and the ITC: exact at p = 0, reproducible per seed, really random otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stickypi_assets.active.certainty import image_certainty
from stickypi_assets.active.itc_mc import sample_tuboids
from stickypi_assets.active.uid_mc import McDropoutMaskRCNN
from stickypi_assets.active.uncertainty import all_scores
from stickypi_assets.formats.tuboids import read_tuboid
from stickypi_assets.ml.itc.model import ItcNet
from stickypi_assets.ml.itc.predict import ItcClassifier
from stickypi_assets.ml.uid.model import MaskRCNNDetector
from stickypi_assets.ml.uid.postprocess import keep_tile_detections, paste_box_mask
from stickypi_assets.ml.uid.tiling import plan_tiles
from stickypi_assets_tests.ml.itc.helpers import COLOURS, make_tuboid
from stickypi_assets_tests.ml.itc.helpers import TINY as TINY_ITC
from stickypi_assets_tests.ml.uid.test_model import TINY as TINY_UID


@pytest.fixture(scope="module")
def detector() -> MaskRCNNDetector:
    torch.manual_seed(0)
    return MaskRCNNDetector(TINY_UID.replace(score_threshold=0.0, tile_size=96, tile_overlap=16))


def tiles() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (64, 80, 3), dtype=np.uint8), rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)]


def test_without_dropout_every_pass_is_the_models_own_prediction(detector):
    reference = detector.predict_batch(tiles())
    dets, rows, embedding = McDropoutMaskRCNN(detector, detector.config, passes=2, dropout=0.0).tile_passes(tiles())
    assert embedding.shape == (2, TINY_UID.fpn_channels)
    for ref, passes, probs in zip(reference, dets, rows, strict=True):
        assert len(ref) > 0
        for det, prob in zip(passes, probs, strict=True):
            np.testing.assert_array_equal(det.boxes, ref.boxes)
            np.testing.assert_array_equal(det.scores, ref.scores)
            np.testing.assert_array_equal(det.labels, ref.labels)
            np.testing.assert_array_equal(det.masks, ref.masks)
            # the kept softmax row is the detection's: its class column is its score
            np.testing.assert_allclose(prob[np.arange(len(det)), det.labels + 1], det.scores, rtol=1e-6)
            np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)


def test_dropout_passes_differ_and_repeat_for_a_seed(detector):
    sampler = McDropoutMaskRCNN(detector, detector.config, passes=3, dropout=0.25, seed=1)
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a, _, _ = sampler.tile_passes(tiles(), generator=g())
    b, _, _ = sampler.tile_passes(tiles(), generator=g())
    for pa, pb in zip(a, b, strict=True):
        for da, db in zip(pa, pb, strict=True):
            np.testing.assert_array_equal(da.boxes, db.boxes)
    first, second = a[1][0], a[1][1]
    assert len(first) != len(second) or not np.array_equal(first.scores, second.scores)


def test_image_passes_are_in_image_pixels_and_filtered_like_the_predictor(detector):
    config = detector.config.replace(original_image_padding=8)
    image = tiles()[1][:80, :80]
    sampler = McDropoutMaskRCNN(detector, config, passes=1, dropout=0.0)
    result = sampler.image_passes(image, key="img")
    padded = np.pad(image, ((8, 8), (8, 8), (0, 0)))
    (tile,) = plan_tiles(96, 96, config.tile_size, config.tile_overlap)
    (ref,) = detector.predict_batch([padded])
    # what the predictor keeps: the tile filters, and a non-empty mask (an empty one has no outline)
    kept = [j for j in keep_tile_detections(ref, tile, config) if paste_box_mask(ref.masks[j], ref.boxes[j], 96, 96)]
    got = np.array([d.box for d in result.passes[0]]).reshape(-1, 4)
    assert result.n_tiles == 1 and len(got) == len(kept) > 0
    np.testing.assert_allclose(got, ref.boxes[kept] - 8, atol=1e-4)
    for d in result.passes[0]:
        assert d.mask is not None and d.mask.area > 0
    certainty = result.certainty()
    assert 0.0 <= certainty.certainty <= 1.0
    # a second call with the same key gives the same passes; box-only passes carry no masks
    again = sampler.image_passes(image, key="img")
    assert [d.box.tolist() for d in again.passes[0]] == got.tolist()
    assert all(d.mask is None for d in sampler.image_passes(image, with_masks=False).passes[0])
    assert image_certainty(sampler.image_passes(image, with_masks=False).passes).certainty <= 1.0


def test_only_the_torchvision_detector_can_be_sampled(detector):
    with pytest.raises(TypeError):
        McDropoutMaskRCNN(object(), detector.config)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        McDropoutMaskRCNN(detector, detector.config, passes=0)


@pytest.fixture(scope="module")
def classifier_and_tuboids(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuboids")
    paths = [make_tuboid(root, i, colour) for i, colour in enumerate(list(COLOURS.values()) * 3)]
    torch.manual_seed(0)
    config = TINY_ITC
    net = ItcNet.from_config(config, pretrained=False)
    return ItcClassifier(net, config), [read_tuboid(p) for p in paths]


def test_itc_without_dropout_reproduces_the_classifier(classifier_and_tuboids):
    classifier, tuboids = classifier_and_tuboids
    out = sample_tuboids(classifier, tuboids, passes=2, dropout=0.0, batch_size=4)
    reference = classifier.probabilities(tuboids)
    assert out.mc_probs.shape == (2, len(tuboids), 3) and out.shot_probs.shape == (len(tuboids), TINY_ITC.n_shots, 3)
    np.testing.assert_allclose(out.probs, reference, rtol=1e-5)
    np.testing.assert_allclose(out.mc_probs[0], reference, rtol=1e-5)
    assert out.embeddings.shape[0] == len(tuboids)
    scores = all_scores(out.mc_probs, out.shot_probs)
    assert scores["bald"] == pytest.approx(np.zeros(len(tuboids)), abs=1e-9)


def test_itc_dropout_passes_vary_and_repeat_for_a_seed(classifier_and_tuboids):
    classifier, tuboids = classifier_and_tuboids
    a = sample_tuboids(classifier, tuboids, passes=4, dropout=0.5, seed=3)
    b = sample_tuboids(classifier, tuboids, passes=4, dropout=0.5, seed=3)
    np.testing.assert_array_equal(a.mc_probs, b.mc_probs)
    assert not np.allclose(a.mc_probs[0], a.mc_probs[1])
    assert (all_scores(a.mc_probs)["bald"] > 0).all()


def test_passes_keep_only_what_the_predictor_would_keep_above_its_score_threshold(detector):
    reference = detector.predict_batch(tiles())
    threshold = float(np.median(np.concatenate([r.scores for r in reference])))
    config = detector.config.replace(score_threshold=threshold)
    dets, _, _ = McDropoutMaskRCNN(detector, config, passes=1, dropout=0.0).tile_passes(tiles())
    for ref, (det,) in zip(reference, dets, strict=True):
        np.testing.assert_array_equal(det.scores, ref.scores[ref.scores > threshold])
