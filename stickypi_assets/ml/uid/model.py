"""The UID's torchvision Mask R-CNN, implementing :class:`~stickypi_assets.ml.uid.detector.Detector`.

The rest of the UID (tiling, post-processing, prediction, validation) talks to the torch-free protocol in
:mod:`stickypi_assets.ml.uid.detector` only, so another backend can replace this one without touching it.

Choices made for the torchvision implementation, and why:

* **No rescaling, ever** (reference defect 5). The original trained on native-scale 1024 px crops but
  inferred through detectron2's ``DefaultPredictor``, which shrank tiles to 800 px. Here the model's
  ``GeneralizedRCNNTransform`` is replaced by :class:`NativeScaleTransform`, which only normalises and
  batches: any tile or crop size runs at the pixel scale it was given, in training and inference alike.
* **BGR → RGB explicitly** and normalised with ImageNet RGB statistics on [0, 1], so that torchvision's
  pretrained backbones (RGB) can be used as they are, and so a random-init model sees well-scaled inputs
  (the original's BGR mean [200, 100, 1] with std 1 on 0-255 fitted only detectron's Caffe weights).
* **Low-resolution masks are returned as they come out of the mask head** (``M x M`` probabilities in the
  frame of their box). torchvision's own post-processing pastes every detection into a full-tile float
  mask: with up to 500 detections on a 1024 px tile that is 2 GB per tile. Pasting one small box at a
  time happens in :mod:`stickypi_assets.ml.uid.postprocess`, only for detections that pass the filters.
* Small anchors ``(8, 16, 32, 64, 128)``, one per FPN level, as in the original config (insects are
  15-350 px). ``resnet18_fpn`` gives a small model for tests and CPU work; ``resnet50_fpn`` is the default.
* Random-init backbones use trainable ``BatchNorm2d`` (torchvision's choice when no weights are loaded);
  pretrained ones keep ``FrozenBatchNorm2d``.
* **The backbone is the cost, so only the backbone runs cheaper** (``INFERENCE_PRECISION``, ``CHANNELS_LAST``):
  ResNet + FPN are ~80% of a tile's forward pass on CPU; under bf16 autocast in channels-last layout they run ~4x
  faster on a CPU with AMX, while the RPN and the heads stay float32 (their cost is small, and box coordinates
  need the mantissa). Every caller of the backbone (prediction, MC-dropout scoring) goes through
  :meth:`MaskRCNNDetector.backbone_features`, so they see the same features.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from stickypi_assets.ml.bundles import atomic_torch_save, weights_version
from stickypi_assets.ml.checkpoints import load_weights_file
from stickypi_assets.ml.uid.config import INFERENCE_PRECISIONS, UidConfig
from stickypi_assets.ml.uid.detector import Detector, TileDetections, TrainableDetector

__all__ = [
    "Detector",
    "MaskRCNNDetector",
    "NativeScaleTransform",
    "TileDetections",
    "TrainableDetector",
    "build_maskrcnn",
    "weights_version",
]

#: Identifies checkpoints written by :meth:`MaskRCNNDetector.save` (plain state dicts load too).
CHECKPOINT_FORMAT = "stickypi-uid-torchvision-maskrcnn/1"


class NativeScaleTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform minus resizing: normalise and batch only (reference defect 5)."""

    def __init__(self, image_mean: Sequence[float], image_std: Sequence[float]) -> None:
        super().__init__(min_size=1, max_size=1, image_mean=list(image_mean), image_std=list(image_std))

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None):  # noqa: D102
        return image, target

    def postprocess(self, result, image_shapes, original_image_sizes):  # noqa: D102
        return result  # sizes never change, and full-size mask pasting is deliberately avoided


def _anchor_generator(config: UidConfig) -> AnchorGenerator:
    sizes = tuple((int(s),) for s in config.anchor_sizes)
    ratios = (tuple(float(r) for r in config.aspect_ratios),) * len(sizes)
    return AnchorGenerator(sizes=sizes, aspect_ratios=ratios)


def _maskrcnn_kwargs(config: UidConfig) -> dict[str, Any]:
    return {
        "rpn_anchor_generator": _anchor_generator(config),
        "rpn_nms_thresh": config.rpn_nms_thresh,
        "rpn_pre_nms_top_n_train": config.rpn_pre_nms_top_n_train,
        "rpn_post_nms_top_n_train": config.rpn_post_nms_top_n_train,
        "rpn_pre_nms_top_n_test": config.rpn_pre_nms_top_n_test,
        "rpn_post_nms_top_n_test": config.rpn_post_nms_top_n_test,
        "box_batch_size_per_image": config.roi_batch_size_per_image,
        "box_score_thresh": config.box_score_thresh,
        "box_nms_thresh": config.box_nms_thresh,
        "box_detections_per_img": config.detections_per_image,
    }


def _freeze_resnet(body: nn.Module, layers: int) -> None:
    """Freeze all but the last ``layers`` ResNet stages (torchvision's rule, also for random init)."""
    trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][:layers] + (["bn1"] if layers == 5 else [])
    for param_name, param in body.named_parameters():
        if not any(param_name.startswith(prefix) for prefix in trainable):
            param.requires_grad_(False)


def _resnet_fpn(config: UidConfig) -> BackboneWithFPN:
    """ResNet + FPN like torchvision's ``resnet_fpn_backbone`` but with a configurable FPN width."""
    pretrained = config.pretrained == "imagenet"
    name = config.backbone.removesuffix("_fpn")
    body = getattr(resnet, name)(
        weights="DEFAULT" if pretrained else None, norm_layer=FrozenBatchNorm2d if pretrained else nn.BatchNorm2d
    )
    _freeze_resnet(body, config.trainable_backbone_layers)
    stage2 = body.inplanes // 8
    return BackboneWithFPN(
        body,
        return_layers={f"layer{k}": str(k - 1) for k in (1, 2, 3, 4)},
        in_channels_list=[stage2 * 2 ** (k - 1) for k in (1, 2, 3, 4)],
        out_channels=config.fpn_channels,
        extra_blocks=LastLevelMaxPool(),
    )


def _uses_torchvision_defaults(config: UidConfig) -> bool:
    return (config.fpn_channels, config.box_head_dim, config.mask_head_channels) == (256, 1024, 256)


def build_maskrcnn(config: UidConfig) -> MaskRCNN:
    """A torchvision Mask R-CNN shaped by ``config`` (backbone, widths, anchors, native-scale transform).

    Never downloads anything unless ``config.pretrained`` asks for it. ResNet-50 with torchvision's widths
    is built by ``maskrcnn_resnet50_fpn`` itself, so its state dict is interchangeable with torchvision's.
    """
    num_classes = len(config.classes) + 1  # + background
    kwargs = _maskrcnn_kwargs(config)
    layers = int(config.trainable_backbone_layers)
    if config.pretrained == "coco":
        if not _uses_torchvision_defaults(config):
            raise ValueError("PRETRAINED 'coco' needs torchvision's widths (FPN 256, box head 1024, mask 256)")
        # COCO heads have 91 classes: load them, then replace the class-specific predictors.
        model = maskrcnn_resnet50_fpn(weights="DEFAULT", trainable_backbone_layers=layers, **kwargs)
        in_features = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
        model.roi_heads.mask_predictor = MaskRCNNPredictor(256, 256, num_classes)
    elif config.backbone == "resnet50_fpn" and config.pretrained == "none" and _uses_torchvision_defaults(config):
        # torchvision ignores (and warns about) trainable layers without weights: freeze ourselves.
        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)
        _freeze_resnet(model.backbone.body, layers)
    else:
        backbone = _resnet_fpn(config)
        channels = config.fpn_channels
        resolution = 7  # torchvision's box RoIAlign output size
        model = MaskRCNN(
            backbone,
            num_classes=None,  # implied by the predictors
            box_head=TwoMLPHead(channels * resolution**2, config.box_head_dim),
            box_predictor=FastRCNNPredictor(config.box_head_dim, num_classes),
            mask_head=MaskRCNNHeads(channels, [config.mask_head_channels] * 4, dilation=1),
            mask_predictor=MaskRCNNPredictor(config.mask_head_channels, config.mask_head_channels, num_classes),
            **kwargs,
        )
    model.transform = NativeScaleTransform(config.pixel_mean, config.pixel_std)
    return model


def bgr_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """BGR uint8 ``(H, W, 3)`` → RGB float ``(3, H, W)`` in [0, 1] on ``device``."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).to(device)
    return tensor.permute(2, 0, 1).float().div_(255.0)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AMX tiles or AVX512-BF16), where bf16 convolutions beat float32.

    Elsewhere oneDNN emulates bf16 and float32 is faster, which is why ``auto`` checks."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def backbone_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the backbone for ``INFERENCE_PRECISION`` on ``device``; ``None`` = float32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if device.type == "cpu" and native_bf16_cpu() else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _set_batchnorm_eval(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class MaskRCNNDetector:
    """:class:`TrainableDetector` over a torchvision Mask R-CNN (see the module docstring)."""

    def __init__(self, config: UidConfig, device: str | torch.device = "cpu", model: MaskRCNN | None = None) -> None:
        self.config = config
        self.device = torch.device(device)
        self.model = (model if model is not None else build_maskrcnn(config)).to(self.device)
        self.model.eval()
        self.configure_inference(config.inference_precision, config.channels_last)

    # -- inference -------------------------------------------------------------------------------------

    def configure_inference(self, precision: str, channels_last: bool) -> None:
        """Choose how :meth:`backbone_features` runs (``INFERENCE_PRECISION``, ``CHANNELS_LAST``; benchmarks switch)."""
        if precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"INFERENCE_PRECISION {precision!r} not in {INFERENCE_PRECISIONS}")
        #: The backbone's autocast dtype at inference (``None``: float32).
        self.backbone_dtype = backbone_dtype(precision, self.device)
        self.channels_last = bool(channels_last)
        if not self.channels_last:
            self._set_layout(False)  # NHWC weights only once :meth:`backbone_features` runs

    def _set_layout(self, channels_last: bool) -> None:
        """The backbone's weights in NHWC for channels-last inference, so that no convolution mixes layouts; back in
        the contiguous layout for training, which thus computes bit for bit what it computed before this option."""
        layout = torch.channels_last if channels_last else torch.contiguous_format
        weight = next((w for w in self.model.backbone.parameters() if w.dim() == 4), None)
        if weight is None or weight.is_contiguous(memory_format=layout):
            return
        self.model.backbone.to(memory_format=layout)  # the values are unchanged; load_state_dict keeps the layout

    def backbone_features(self, batch: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """ResNet + FPN features of a normalised ``(N, 3, H, W)`` batch, float32 whatever precision they ran at.

        For inference (call under ``torch.inference_mode``): training calls the model as torchvision does, in the
        contiguous layout and float32, so ``INFERENCE_PRECISION`` and ``CHANNELS_LAST`` never touch it.
        """
        backbone = self.model.backbone
        self._set_layout(self.channels_last)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if self.backbone_dtype is None:
            return backbone(batch)
        with torch.autocast(self.device.type, dtype=self.backbone_dtype):
            features = backbone(batch)
        return OrderedDict((name, f.float()) for name, f in features.items())

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[np.ndarray]) -> list[TileDetections]:
        """Detections for each BGR tile; tiles may differ in size (they are zero-padded into one batch)."""
        if not images:
            return []
        model = self.model
        if model.training:
            model.eval()
        tensors = [bgr_to_tensor(img, self.device) for img in images]
        image_list, _ = model.transform(tensors)
        features = self.backbone_features(image_list.tensors)
        proposals, _ = model.rpn(image_list, features)
        detections, _ = model.roi_heads(features, proposals, image_list.image_sizes)
        out = []
        for det in detections:
            masks = det["masks"][:, 0] if len(det["masks"]) else det["masks"].reshape(0, 28, 28)
            out.append(
                TileDetections(
                    boxes=det["boxes"].float().cpu().numpy(),
                    scores=det["scores"].float().cpu().numpy(),
                    labels=(det["labels"] - 1).cpu().numpy(),
                    masks=masks.float().cpu().numpy(),
                )
            )
        return out

    # -- training --------------------------------------------------------------------------------------

    def losses(
        self, images: Sequence[np.ndarray], targets: Sequence[Mapping[str, np.ndarray]]
    ) -> dict[str, torch.Tensor]:
        """Mask R-CNN loss terms for BGR images and targets ``{boxes, labels (0-based), masks}``.

        Call :meth:`train` or :meth:`eval_losses_mode` first; the mode decides whether batch norm
        statistics move.
        """
        tensors = [bgr_to_tensor(img, self.device) for img in images]
        torch_targets = [
            {
                "boxes": torch.as_tensor(np.asarray(t["boxes"], dtype=np.float32).reshape(-1, 4), device=self.device),
                "labels": torch.as_tensor(np.asarray(t["labels"], dtype=np.int64) + 1, device=self.device),
                "masks": torch.as_tensor(np.asarray(t["masks"], dtype=np.uint8), device=self.device),
            }
            for t in targets
        ]
        return self.model(tensors, torch_targets)

    def train(self) -> None:
        self._set_layout(False)
        self.model.train()

    def eval(self) -> None:
        self.model.eval()

    def eval_losses_mode(self) -> None:
        """Loss mode without side effects: torchvision returns losses only in training mode, but
        validation must not update batch-norm running statistics."""
        self._set_layout(False)
        self.model.train()
        _set_batchnorm_eval(self.model)

    def parameters(self):
        return self.model.parameters()

    # -- persistence -----------------------------------------------------------------------------------

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write ``{"format", "model", "config", **extra}`` atomically (readers never see half a file)."""
        payload = {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "config": self.config.to_dict()}
        payload.update(extra)
        return atomic_torch_save(payload, path)

    def load_weights(self, path: str | Path, *, expected_version: str | None = None) -> dict[str, Any]:
        """Load weights from our checkpoints or a bare state dict; returns the whole checkpoint dict.

        Read by :func:`~stickypi_assets.ml.checkpoints.load_weights_file` (tensors and plain values only, the md5
        checked against ``expected_version`` when given): a weights file from the store never runs code.
        """
        checkpoint = load_weights_file(path, map_location=self.device, expected_version=expected_version)
        state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
        self.model.load_state_dict(state)
        return checkpoint if isinstance(checkpoint, dict) else {"model": state}
