"""Cheaper forward passes: the backbone's layout and precision at inference, and nothing else changed by them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stickypi_assets.ml.uid import model as model_module
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.model import MaskRCNNDetector, backbone_dtype, bgr_to_tensor

TINY = UidConfig(backbone="resnet18_fpn", fpn_channels=16, box_head_dim=32, mask_head_channels=16,
                 rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=50, detections_per_image=20)  # fmt: skip
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _detector(precision: str, channels_last: bool) -> MaskRCNNDetector:
    torch.manual_seed(0)  # the same random weights for every detector of this module
    return MaskRCNNDetector(TINY.replace(inference_precision=precision, channels_last=channels_last))


def _batch(detector: MaskRCNNDetector, seed: int = 0) -> torch.Tensor:
    tile = np.random.default_rng(seed).integers(0, 255, (128, 160, 3), dtype=np.uint8)
    return detector.model.transform([bgr_to_tensor(tile)])[0].tensors


def test_precision_resolves_per_device(monkeypatch):
    assert backbone_dtype("fp32", CPU) is None and backbone_dtype("fp32", CUDA) is None
    assert backbone_dtype("bf16", CPU) == torch.bfloat16 and backbone_dtype("fp16", CUDA) == torch.float16
    assert backbone_dtype("auto", CUDA) == torch.float16
    monkeypatch.setattr(model_module, "native_bf16_cpu", lambda: True)
    assert backbone_dtype("auto", CPU) == torch.bfloat16
    monkeypatch.setattr(model_module, "native_bf16_cpu", lambda: False)  # emulated bf16 is slower than float32
    assert backbone_dtype("auto", CPU) is None


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="INFERENCE_PRECISION 'int8' not in"):
        UidConfig.from_dict({"INFERENCE_PRECISION": "int8"})
    with pytest.raises(ValueError, match="INFERENCE_PRECISION"):
        _detector("fp32", False).configure_inference("int8", True)


@torch.inference_mode()
def test_channels_last_computes_the_same_features_and_switches_back():
    plain, nhwc = _detector("fp32", False), _detector("fp32", True)
    assert nhwc.model.backbone.body.conv1.weight.is_contiguous()  # training's layout until inference runs
    a, b = plain.backbone_features(_batch(plain)), nhwc.backbone_features(_batch(nhwc))
    conv = nhwc.model.backbone.body.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert list(a) == list(b)
    for name in a:
        torch.testing.assert_close(a[name], b[name].contiguous(), rtol=1e-4, atol=1e-4)
    nhwc.configure_inference("fp32", False)
    assert nhwc.model.backbone.body.conv1.weight.is_contiguous()


@torch.inference_mode()
def test_bf16_backbone_is_close_and_hands_float32_to_the_heads():
    full, half = _detector("fp32", False), _detector("bf16", True)
    assert half.backbone_dtype == torch.bfloat16
    a, b = full.backbone_features(_batch(full)), half.backbone_features(_batch(half))
    for name in a:
        assert b[name].dtype == torch.float32
        cosine = torch.nn.functional.cosine_similarity(a[name].flatten(), b[name].flatten(), dim=0)
        assert cosine > 0.995, (name, float(cosine))
        assert not torch.equal(a[name], b[name])  # bf16 really ran: it cannot give float32's exact values
    tile = np.random.default_rng(3).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    det = half.predict_batch([tile])[0]
    assert det.boxes.dtype == np.float32 and det.masks.dtype == np.float32


def test_training_runs_in_the_contiguous_layout_after_inference():
    detector = _detector("bf16", True)
    with torch.inference_mode():
        detector.backbone_features(_batch(detector))
    detector.train()
    assert detector.model.backbone.body.conv1.weight.is_contiguous()
    detector.eval()
    detector.predict_batch([np.zeros((64, 64, 3), np.uint8)])
    assert not detector.model.backbone.body.conv1.weight.is_contiguous()
    detector.eval_losses_mode()
    assert detector.model.backbone.body.conv1.weight.is_contiguous()


def test_training_losses_do_not_depend_on_the_inference_precision():
    image = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    masks = np.zeros((1, 64, 64), np.uint8)
    masks[0, 10:30, 20:50] = 1
    target = {"boxes": np.array([[20, 10, 50, 30]], np.float32), "labels": np.array([0]), "masks": masks}
    losses = []
    for precision in ("fp32", "bf16"):
        detector = _detector(precision, True)
        detector.eval_losses_mode()
        torch.manual_seed(5)  # the RPN and ROI samplers draw from the global generator
        with torch.no_grad():
            losses.append({k: float(v) for k, v in detector.losses([image], [target]).items()})
    assert losses[0] == losses[1]
