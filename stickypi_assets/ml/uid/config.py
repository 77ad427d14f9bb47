"""UID bundle configuration: one flat dataclass with a default for every key, saved as YAML.

A bundle keeps its configuration in ``<bundle>/config/config.yaml``. The original tools stored a detectron2
config there (nested ``MODEL.*``/``SOLVER.*`` keys plus a few custom top-level keys) and *read keys that no
shipped file defined* (``ORIGINAL_IMAGE_PADDING``, ``TEST_PERIOD``, ``PRINTING_PERIOD``; reference 3.1 and
8.1), so loading crashed. Here every key has a default, and the hard-coded predictor constants of the
original (score threshold, tile size/overlap, edge margin, merge IoU; reference 8.6) are keys too.

Our own files use flat UPPER_CASE keys (the style of the original's custom keys, e.g. ``CLASSES``,
``MIN_MAX_OBJ_SIZE``). Legacy detectron2 files are still accepted: the nested keys that mean the same thing
here are mapped (:data:`LEGACY_KEYS`), the rest are reported in :attr:`UidConfig.warnings`. Two deliberate
exceptions: ``MODEL.PIXEL_MEAN``/``PIXEL_STD`` are *not* mapped, because the original normalised BGR pixels
on a 0-255 scale with std 1 while our models take RGB in [0, 1] (see :mod:`stickypi_assets.ml.uid.model`),
and ``INPUT.MIN_SIZE_TEST`` is ignored because we never rescale tiles (reference defect 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from stickypi_assets.formats.annotations import class_for_stroke, normalize_colour
from stickypi_assets.ml.bundles import BundleConfig
from stickypi_assets.ml.uid.detector import allowed_detectors, is_allowed_detector

#: Name of the bundle, also the ``algo_name`` written into prediction metadata (reference 3.3 step 8).
BUNDLE_NAME = "universal-insect-detector"

#: Backbones :func:`stickypi_assets.ml.uid.model.build_maskrcnn` knows. ``resnet18_fpn`` is the small one
#: (tests, CPU experiments); ``resnet50_fpn`` is the default and the only one with COCO Mask R-CNN weights.
BACKBONES = ("resnet18_fpn", "resnet34_fpn", "resnet50_fpn", "resnet101_fpn")
PRETRAINED = ("none", "imagenet", "coco")
OPTIMIZERS = ("sgd", "adamw")
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class UidConfig(BundleConfig):
    """Everything that shapes a UID model, its training and its predictions.

    Attribute names are the lower-case YAML keys. Defaults reproduce the original tools' values where
    they were sensible and documented, and say why where they differ.
    """

    WHAT: ClassVar[str] = "UID"
    DESCRIPTION: ClassVar[str] = "Universal Insect Detector configuration"

    # -- classes and data ------------------------------------------------------------------------------
    #: ``[name, stroke colour]`` pairs. As in the original palette, label ids follow the *sorted* names.
    classes: list[list[str]] = field(default_factory=lambda: [["insect", "#0000ff"]])
    #: Zero padding (px) added around every image in training and inference, so that true image edges
    #: look different from crop/tile edges (manuscript value; absent from the shipped configs).
    original_image_padding: int = 32
    #: Objects whose rotated-rectangle long side is ``<= min`` or ``> max`` are left out of training
    #: targets; at inference, boxes must exceed ``min`` in width or height.
    min_max_obj_size: list[int] = field(default_factory=lambda: [20, 600])

    # -- model -----------------------------------------------------------------------------------------
    #: Detection backend: ``maskrcnn`` (torchvision Mask R-CNN, the keys below) or the name of a detector factory
    #: that code registered (``stickypi_assets.ml.uid.detector.register_detector``) or an installed package offers
    #: (entry point group ``stickypi_assets.uid_detectors``): ``factory(config, device)`` returning a detector with
    #: ``predict_batch`` and ``load_weights(path)``. A config selects among these; it never names code to import.
    detector: str = "maskrcnn"
    #: ResNet + FPN backbone, one of ``BACKBONES``. The original used detectron2's ResNet-101 C4 (a single
    #: feature map); torchvision has no C4 Mask R-CNN, and ``resnet50_fpn`` is the one with COCO weights.
    backbone: str = "resnet50_fpn"
    #: ``none`` (random init, never downloads), ``imagenet`` (backbone) or ``coco`` (whole Mask R-CNN,
    #: ``resnet50_fpn`` only). Pretrained weights are fetched by torchvision on first use.
    pretrained: str = "none"
    #: Trainable ResNet stages (0-5). 5 for random init; 3 is torchvision's choice for pretrained.
    trainable_backbone_layers: int = 5
    #: One anchor size per FPN level (P2..P6): insects are 15-350 px, far below COCO's 32-512.
    anchor_sizes: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 128])
    #: Anchor height/width ratios, the same at every FPN level (0.5, 1, 2: the original's and detectron2's).
    aspect_ratios: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    #: Output channels of every FPN level, which the box and mask heads read (torchvision: 256). Small
    #: models for tests/CPU use e.g. 64 with ``BOX_HEAD_DIM`` 256 and ``MASK_HEAD_CHANNELS`` 64 (about 10x
    #: less compute); ``PRETRAINED: coco`` needs torchvision's 256/1024/256. (The original C4 model had no FPN.)
    fpn_channels: int = 256
    #: Hidden width of the box head's two fully connected layers (torchvision: 1024; see ``FPN_CHANNELS``).
    box_head_dim: int = 1024
    #: Channels of the mask head's four 3x3 convolutions and of its upsampling layer (torchvision: 256; see
    #: ``FPN_CHANNELS``).
    mask_head_channels: int = 256
    #: Per-channel mean subtracted from **RGB** pixels scaled to [0, 1] (ImageNet statistics, so pretrained
    #: backbones fit). The original's BGR 0-255 mean [200, 100, 1] is not mapped from legacy files.
    pixel_mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    #: Per-channel divisor of the same RGB [0, 1] pixels, after ``PIXEL_MEAN`` (ImageNet statistics; the
    #: original's std 1 on 0-255 BGR is not mapped from legacy files either).
    pixel_std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    #: IoU above which the RPN suppresses overlapping proposals. 0.9 as the original config (detectron2 and
    #: torchvision: 0.7): a high value keeps proposals of touching, overlapping insects.
    rpn_nms_thresh: float = 0.9
    #: Proposals kept per FPN level (best objectness) before the RPN's NMS, in training (torchvision's FPN
    #: default; the original's single C4 map kept 12000 in all).
    rpn_pre_nms_top_n_train: int = 2000
    #: Proposals kept per image after the RPN's NMS, in training (2000, as the original and torchvision).
    rpn_post_nms_top_n_train: int = 2000
    #: Proposals kept per FPN level before the RPN's NMS, at inference (torchvision's FPN default; the
    #: original's single C4 map kept 6000 in all).
    rpn_pre_nms_top_n_test: int = 1000
    #: Proposals kept per image (tile) after the RPN's NMS, at inference (1000, as the original and torchvision).
    rpn_post_nms_top_n_test: int = 1000
    #: Proposals sampled per training image to train the box and mask heads (original config: 256, half of
    #: detectron2's and torchvision's 512; a crop holds far fewer objects than a COCO image).
    roi_batch_size_per_image: int = 256
    #: Detections scoring below this are dropped inside the model, before its NMS (detectron
    #: ``ROI_HEADS.SCORE_THRESH_TEST``, 0.05 as in the original); ``SCORE_THRESHOLD`` filters afterwards.
    box_score_thresh: float = 0.05
    #: IoU above which the model's per-class NMS drops the lower-scoring of two detections of one tile
    #: (detectron ``ROI_HEADS.NMS_THRESH_TEST``, 0.5 as in the original).
    box_nms_thresh: float = 0.5
    #: Most detections the model returns per tile (original config: 500; detectron2 and torchvision: 100,
    #: too few for a busy card).
    detections_per_image: int = 500
    #: Mask-head probability above which a pixel belongs to the instance when masks are binarised (0.5, as
    #: detectron2 and torchvision paste masks).
    mask_threshold: float = 0.5

    # -- prediction (hard-coded in the original predictor) ---------------------------------------------------
    #: Final score threshold. 0.85 suits a fully trained model; lower it for briefly trained ones.
    score_threshold: float = 0.85
    #: Side (px) of the square inference tiles, cut from the padded image and never resized. 1024 as the
    #: original predictor, = ``CROP_SIZE`` so tiles have the training scale (the original shrank them to
    #: 800 px, defect 5). Images smaller than a tile are run whole.
    tile_size: int = 1024
    #: Minimum overlap between neighbouring tiles (px).
    tile_overlap: int = 500
    #: Detections whose box comes within this many px of an *inner* tile border are dropped.
    edge_margin: int = 32
    #: Cross-tile duplicates: IoU above this between polygons of different tiles (manuscript: 0.5).
    merge_iou: float = 0.33
    #: Tiles per forward pass. 1 on CPU: batching 4 tiles of 1024 px gained no speed there but raised peak
    #: memory from 2.6 to 6 GB (ResNet-50, benchmarks/uid_inference.py); raise it on a GPU.
    tile_batch_size: int = 1
    #: Precision of the backbone (ResNet + FPN, most of the forward pass) at inference: ``fp32``, ``bf16``,
    #: ``fp16``, or ``auto`` = fp16 on CUDA, bf16 on a CPU that computes it natively (AMX or AVX512-BF16), else
    #: fp32. The RPN and the box and mask heads always run in float32, so boxes keep full precision (bf16 has 8
    #: bits of mantissa: 4 px at x = 1000). Training is not affected. See benchmarks/uid_inference.py.
    inference_precision: str = "auto"
    #: Run the backbone in channels-last (NHWC) memory layout at inference, which oneDNN and cuDNN convolve faster.
    channels_last: bool = True
    #: Douglas-Peucker epsilon as a fraction of the contour perimeter.
    polygon_epsilon: float = 0.006
    #: 3x3 dilations of the binary mask before tracing. The original dilated once; 0 is right here because
    #: training masks are rasterised with the boundary included (``cv2.fillPoly``), so tracing the predicted
    #: mask without dilation gives back polygons of the annotated size.
    mask_dilation: int = 0

    # -- change-aware inference over a device-day (see stickypi_assets.ml.uid.change) -----------------------
    #: Re-run the detector only on the tiles that changed since they were last run, carrying over the
    #: detections of the others (a card changes little in 20 minutes). False = every tile of every frame.
    change_aware: bool = True
    #: Frames are compared as grey thumbnails this many times smaller than the image (area averaging, so
    #: JPEG noise averages out), each divided by its median (a global change of brightness is not a change).
    change_downscale: int = 4
    #: A thumbnail pixel has changed when it is darker or brighter than every reference pixel around it (3 x 3,
    #: so a camera shake of a pixel or two is no change), or the reverse (an insect gone), by more than this
    #: share of the frame's median brightness.
    change_pixel_threshold: float = 0.2
    #: Changed thumbnail pixels that make a tile changed (2 at ``CHANGE_DOWNSCALE`` 4: a dark insect ~6 px long).
    change_min_pixels: int = 2
    #: A full pass (every tile) at least every this many frames, whatever changed.
    change_full_every: int = 12
    #: A full pass when the frame's median brightness differs from that of the last full pass by more than
    #: this share (the night flash, dawn, a cloud): the comparison is rebased on the new lighting.
    change_illumination: float = 0.15

    # -- validation --------------------------------------------------------------------------------------
    #: IoU at or above which a prediction can match a ground-truth polygon (original ``validate``: 0.33).
    match_iou: float = 0.33
    #: Area (px²) above which precision/recall are also reported separately (~4 mm² at 15.5 px/mm).
    large_object_area: float = 1000.0

    # -- training data ---------------------------------------------------------------------------------
    #: Side of the square training crops and validation grid tiles (native scale, never resized).
    crop_size: int = 1024
    #: Random rotation by any angle (the original: uniform in [0, 360)).
    rotate: bool = True
    #: Random horizontal and vertical flips of training crops, each with probability 0.5 (as the original).
    flip: bool = True
    #: Brightness factor uniform in [1 - a, 1 + a] (original: [0.9, 1.1]). The colour jitter has torchvision
    #: ColorJitter semantics, in random order, applied in the right channel order (the original mixed BGR and
    #: RGB, defect 12); 0 turns a jitter off.
    brightness: float = 0.1
    #: Contrast factor uniform in [1 - a, 1 + a] (original: [0.9, 1.1]).
    contrast: float = 0.1
    #: Saturation factor uniform in [1 - a, 1 + a] (original: [0.9, 1.1]).
    saturation: float = 0.1
    #: Hue shift uniform in [-a, a] of a full colour turn (original: 0.1).
    hue: float = 0.1
    #: Instances with fewer visible pixels in a crop are dropped from its targets; predicted outlines
    #: enclosing fewer px² (once cut to the image) are dropped too.
    min_visible_pixels: int = 30
    #: DataLoader worker processes making crops (0 = in the training process; the original used 8 on GPU
    #: machines, where crop making must keep up with the model).
    num_workers: int = 0

    # -- solver ----------------------------------------------------------------------------------------
    #: ``sgd`` (with ``MOMENTUM``, as detectron2) or ``adamw`` (decoupled ``WEIGHT_DECAY``, no momentum).
    optimizer: str = "sgd"
    #: Training crops per iteration, also the batch of the validation-loss passes (original config: 14;
    #: detectron2: 16; manuscript: 12).
    ims_per_batch: int = 14
    #: Learning rate after warm-up, before any ``STEPS`` (original config: 0.05; manuscript: 0.002). Lower it
    #: (or set ``GRAD_CLIP_NORM``) if the loss diverges.
    base_lr: float = 0.05
    #: SGD momentum (0.9, detectron2's default, unchanged by the original); unused by ``adamw``.
    momentum: float = 0.9
    #: Weight decay (1e-4, detectron2's default, unchanged by the original).
    weight_decay: float = 1e-4
    #: Multiply the learning rate by ``gamma`` at each of ``steps`` (iterations).
    gamma: float = 0.8
    #: Iterations at which the learning rate is multiplied by ``GAMMA`` (original config: every 10000 up to
    #: 100000, so the rate stays at 0.8^10 of ``BASE_LR`` afterwards).
    steps: list[int] = field(default_factory=lambda: [10000 * k for k in range(1, 11)])
    #: Iterations of linear warm-up from ``BASE_LR * WARMUP_FACTOR`` to ``BASE_LR`` (detectron2's 1000,
    #: unchanged by the original).
    warmup_iters: int = 1000
    #: Learning-rate multiplier at iteration 0 of the warm-up (detectron2's 0.001, unchanged by the original).
    warmup_factor: float = 0.001
    #: Gradient-norm clipping (0 = off); helps random-init runs survive early spikes.
    grad_clip_norm: float = 0.0
    #: Total training iterations, resumed ones included (original config: 550000; manuscript: 150000).
    #: ``train --max-iter`` overrides it.
    max_iter: int = 550000
    #: Iterations between resumable snapshots ``output/model_<iteration:07d>.pth``, e.g. ``model_0004999.pth``
    #: (weights and optimiser state; detectron2's 5000, unchanged by the original).
    checkpoint_period: int = 5000
    #: Iterations between validation-loss evaluations (absent from the shipped configs).
    test_period: int = 1000
    #: Iterations between training-loss log lines (absent from the shipped configs).
    printing_period: int = 20
    #: Seed of the model initialisation and of the random training crops (the crop stream is reseeded with
    #: the start iteration, so a resumed run does not repeat crops). The original's detectron2 seed was random.
    seed: int = 0

    # -- derived -----------------------------------------------------------------------------------------

    @property
    def palette(self) -> dict[str, str]:
        """Class name → normalised stroke colour."""
        return {str(name): normalize_colour(str(colour)) for name, colour in self.classes}

    @property
    def class_names(self) -> list[str]:
        """Class names in label order: sorted, as the original palette numbered them (label = index + 1)."""
        return sorted(self.palette)

    def label_for_stroke(self, stroke: str) -> int | None:
        """0-based class index of a stroke colour, or ``None`` for colours outside the palette."""
        name = class_for_stroke(stroke, self.palette)
        return None if name is None else self.class_names.index(name)

    # -- checks and (de)serialisation ------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every problem of this configuration (empty when valid)."""
        problems = []
        if not self.classes or any(len(c) != 2 for c in self.classes):
            problems.append("CLASSES must be a non-empty list of [name, colour] pairs")
        elif len({str(c[0]) for c in self.classes}) != len(self.classes):
            problems.append("CLASSES has duplicate names")
        if not isinstance(self.detector, str) or not is_allowed_detector(self.detector):
            # the config comes from the store: it selects an allowed factory, it never names code to import
            problems.append(f"DETECTOR {self.detector!r} is not an allowed detector (allowed: "
                            f"{', '.join(allowed_detectors())}; others are registered in code or by entry point)")
        if self.backbone not in BACKBONES:
            problems.append(f"BACKBONE {self.backbone!r} not in {BACKBONES}")
        if self.pretrained not in PRETRAINED:
            problems.append(f"PRETRAINED {self.pretrained!r} not in {PRETRAINED}")
        if self.pretrained == "coco" and self.backbone != "resnet50_fpn":
            problems.append("PRETRAINED 'coco' exists only for BACKBONE 'resnet50_fpn'")
        if self.inference_precision not in INFERENCE_PRECISIONS:
            problems.append(f"INFERENCE_PRECISION {self.inference_precision!r} not in {INFERENCE_PRECISIONS}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"OPTIMIZER {self.optimizer!r} not in {OPTIMIZERS}")
        if len(self.min_max_obj_size) != 2 or self.min_max_obj_size[0] >= self.min_max_obj_size[1]:
            problems.append("MIN_MAX_OBJ_SIZE must be [min, max] with min < max")
        if len(self.anchor_sizes) != 5:
            problems.append("ANCHOR_SIZES needs one size per FPN level (5: P2-P6)")
        if len(self.pixel_mean) != 3 or len(self.pixel_std) != 3:
            problems.append("PIXEL_MEAN and PIXEL_STD need 3 values (RGB)")
        if self.tile_size <= 0 or not 0 <= self.tile_overlap < self.tile_size:
            problems.append("need TILE_SIZE > 0 and 0 <= TILE_OVERLAP < TILE_SIZE")
        if not 0 <= self.edge_margin < self.tile_size // 2:
            problems.append("EDGE_MARGIN must be in [0, TILE_SIZE / 2)")
        for key in ("score_threshold", "merge_iou", "match_iou", "mask_threshold", "box_nms_thresh"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                problems.append(f"{key.upper()} must be in [0, 1]")
        positive = ("fpn_channels", "box_head_dim", "mask_head_channels", "crop_size", "ims_per_batch")
        positive += ("tile_batch_size", "checkpoint_period", "test_period", "change_downscale", "change_min_pixels")
        positive += ("change_full_every", "change_pixel_threshold", "change_illumination")
        for key in positive:
            if getattr(self, key) <= 0:
                problems.append(f"{key.upper()} must be > 0")
        if self.printing_period <= 0 or self.max_iter < 0 or self.original_image_padding < 0:
            problems.append("PRINTING_PERIOD must be > 0, MAX_ITER and ORIGINAL_IMAGE_PADDING >= 0")
        if list(self.steps) != sorted(self.steps):
            problems.append("STEPS must be increasing")
        return problems

    @classmethod
    def _read_unknown_key(cls, key: str, value: Any, values: dict[str, Any], warnings: list[str]) -> None:
        """Legacy detectron2 documents (nested ``MODEL.*``/``SOLVER.*`` keys) are mapped where they mean the same."""
        if isinstance(value, Mapping) or key in _LEGACY_TOP_LEVEL:
            _read_legacy(key, value, values, warnings)
        else:
            super()._read_unknown_key(key, value, values, warnings)



#: Legacy detectron2 keys (dotted path) that have an equivalent here.
LEGACY_KEYS: dict[str, str] = {
    "MODEL.RPN.NMS_THRESH": "rpn_nms_thresh",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN": "rpn_pre_nms_top_n_train",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN": "rpn_post_nms_top_n_train",
    "MODEL.RPN.PRE_NMS_TOPK_TEST": "rpn_pre_nms_top_n_test",
    "MODEL.RPN.POST_NMS_TOPK_TEST": "rpn_post_nms_top_n_test",
    "MODEL.ANCHOR_GENERATOR.SIZES": "anchor_sizes",
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": "aspect_ratios",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": "roi_batch_size_per_image",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST": "box_score_thresh",
    "MODEL.ROI_HEADS.NMS_THRESH_TEST": "box_nms_thresh",
    "DATALOADER.NUM_WORKERS": "num_workers",
    "SOLVER.IMS_PER_BATCH": "ims_per_batch",
    "SOLVER.BASE_LR": "base_lr",
    "SOLVER.MOMENTUM": "momentum",
    "SOLVER.WEIGHT_DECAY": "weight_decay",
    "SOLVER.GAMMA": "gamma",
    "SOLVER.STEPS": "steps",
    "SOLVER.WARMUP_ITERS": "warmup_iters",
    "SOLVER.WARMUP_FACTOR": "warmup_factor",
    "SOLVER.MAX_ITER": "max_iter",
    "SOLVER.CHECKPOINT_PERIOD": "checkpoint_period",
    "TEST.DETECTIONS_PER_IMAGE": "detections_per_image",
    "INPUT.CROP.SIZE": "crop_size",
}
#: Legacy keys that are understood but deliberately not used (see the module docstring).
_LEGACY_IGNORED = ("_BASE_", "BASE_MODEL_PREFIX", "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD", "INPUT.MIN_SIZE_TEST")
_LEGACY_TOP_LEVEL = frozenset({"_BASE_", "BASE_MODEL_PREFIX"})


def _read_legacy(prefix: str, value: Any, out: dict[str, Any], warnings: list[str]) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _read_legacy(f"{prefix}.{key}", sub, out, warnings)
        return
    if prefix in LEGACY_KEYS:
        name = LEGACY_KEYS[prefix]
        if name in ("anchor_sizes", "aspect_ratios") and value and isinstance(value[0], list | tuple):
            # detectron lists one inner list per feature map; C4 models have a single map holding all sizes.
            value = [v for inner in value for v in inner] if name == "anchor_sizes" else list(value[0])
        if name == "crop_size" and isinstance(value, list | tuple):
            value = value[0]
        out.setdefault(name, value)
    elif prefix in _LEGACY_IGNORED:
        warnings.append(f"legacy key {prefix!r} has no equivalent here and was ignored")
    else:
        warnings.append(f"legacy key {prefix!r} ignored")


#: Module-level names of the config's file operations (``load_config(path)``, ``save_config(config, path)``).
load_config = UidConfig.load
save_config = UidConfig.save
bundle_config = UidConfig.from_bundle
