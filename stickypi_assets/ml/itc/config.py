"""ITC bundle configuration: one flat dataclass with a default for every key, saved as YAML.

A bundle keeps it in ``<bundle>/config/config.yaml``. The original ITC config was already flat UPPER_CASE
(``LABELS``, ``IMS_PER_BATCH``, ``N_WORKERS``, ``BASE_LR``, ``LR_MOMENTUM``, ``N_ROUNDS``, ``GAMMA``,
``CHECKPOINT_PERIOD``; reference 5.4), so original files load as they are. What the original hard-coded
(ResNet-50, 6 shots, 224 px, median pooling, the augmentation ranges, the 191/255 split) are keys here too,
and so are the new ones (class balancing, the annotator rule, the optimiser).

Defaults are the original ``default_config`` values (18 labels, batch 8, SGD lr 0.002 momentum 0.9,
``GAMMA`` 0.9999, 50000 rounds, checkpoint every 50 rounds) except where a key says why it differs.
``PRETRAINED`` defaults to False (random init) so nothing is ever downloaded unless asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from stickypi_assets.formats.labels import REFERENCE_DEFAULT_LABELS, LabelError, LabelMap
from stickypi_assets.ml.bundles import BundleConfig

#: Name of the bundle (also the API/S3 name and the ``algo_name`` of the original).
BUNDLE_NAME = "insect-tuboid-classifier"

#: torchvision ResNets the classifier can use (``resnet50`` is the reference; ``resnet18`` for tests/CPU).
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
POOLINGS = ("median", "mean")
CLASS_BALANCES = ("sampler", "loss", "none")
ANNOTATION_RULES = ("latest", "majority")
OPTIMIZERS = ("sgd", "adamw")
VALIDATION_SPLITS = ("md5", "device")


def _default_labels() -> list[list]:
    return [[pattern, label] for pattern, label in REFERENCE_DEFAULT_LABELS]


@dataclass
class ItcConfig(BundleConfig):
    """Everything that shapes an ITC model, its data and its training. Attributes = lower-case YAML keys."""

    WHAT: ClassVar[str] = "ITC"
    DESCRIPTION: ClassVar[str] = "Insect Tuboid Classifier configuration"

    # -- labels and data (reference 5.4-5.6) -----------------------------------------------------------
    #: ``[regex, label or null]`` in matching order (first match wins); nulls are numbered in list order
    #: after the largest explicit label (:class:`~stickypi_assets.formats.labels.LabelMap`).
    labels: list[list] = field(default_factory=_default_labels)
    #: How the rows of several annotators (or several submissions) of one tuboid become one label:
    #: ``latest`` = the latest submission wins, whoever made it (the original's rule); ``majority`` = each
    #: annotator's latest submission is one vote for a class, the most voted class wins and ties go to the
    #: class voted most recently (see :func:`stickypi_assets.ml.itc.dataset.select_annotations`).
    annotation_rule: str = "latest"
    #: Per label, ``floor(n * 191 / 255)`` tuboids (by md5 of ``metadata.txt``) go to training, but at least
    #: this many: the original's 0 put every single-example label entirely in validation (defect 24), where
    #: the model can only get it wrong. 0 reproduces the original split exactly.
    min_train_per_label: int = 1
    #: Which tuboids validate: ``md5`` = per label, the original's md5 split above; ``device`` = every tuboid of
    #: the held-out devices (devices ordered by the md5 of their id, held out until they hold a quarter of the
    #: tuboids, at least one device kept for training), so validation measures how the model does on a card it
    #: never saw, as it will on a new deployment. A label whose tuboids all come from held-out devices keeps
    #: the md5 split (it must train somewhere); with one device the split is ``md5``, with a warning.
    validation_split: str = "md5"

    # -- network (reference 5.3) -----------------------------------------------------------------------
    #: torchvision ResNet computing each shot's features, one of ``BACKBONES`` (the original's ResNet-50;
    #: ``resnet18`` is a small one for tests and CPU work).
    backbone: str = "resnet50"
    #: ImageNet weights for the backbone (torchvision downloads them on first use). False = random init.
    pretrained: bool = False
    #: Shots (tiles) per tuboid: tile 0 plus ``n_shots - 1`` others (reference: 6).
    n_shots: int = 6
    #: How per-shot feature vectors are combined: ``median`` (reference; a true median, see the model) or
    #: ``mean``. See :mod:`stickypi_assets.ml.itc.model` for why median is the default.
    pooling: str = "median"
    #: Side (px) the 224 px tiles are resized to before the backbone (224 = no resizing).
    input_size: int = 224

    # -- augmentation (reference 5.2; training only) ---------------------------------------------------------
    #: Brightness factor drawn per shot from U[1 - a, 1 + a] (reference: 0.5); 0 turns it off.
    brightness: float = 0.5
    #: Contrast factor drawn per shot from U[1 - a, 1 + a], around the tile's mean grey (reference: 0.5).
    contrast: float = 0.5
    #: Saturation factor drawn per shot from U[1 - a, 1 + a], applied to RGB pixels (reference: 0.5).
    saturation: float = 0.5
    #: Random horizontal and vertical flips of each shot, each with probability 0.5 (as the reference).
    flip: bool = True
    #: Rotation by a uniform angle in [0, 360) on an expanded canvas (nothing is cut off), then resized back.
    rotate: bool = True

    # -- solver (reference 5.7) --------------------------------------------------------------------------
    #: ``sgd`` (the original, with ``LR_MOMENTUM``) or ``adamw`` (decoupled ``WEIGHT_DECAY``, no momentum).
    optimizer: str = "sgd"
    #: Tuboids per training round.
    ims_per_batch: int = 8
    #: Learning rate at round 0, then decayed by ``GAMMA`` every round (original: 0.002).
    base_lr: float = 0.002
    #: SGD momentum (original: 0.9); unused by ``adamw``.
    lr_momentum: float = 0.9
    #: Weight decay (L2 for ``sgd``, decoupled for ``adamw``); 0 = none, as in the original.
    weight_decay: float = 0.0
    #: lr at round r = ``BASE_LR * GAMMA ** r``.
    gamma: float = 0.9999
    #: Training rounds (one round = one batch of ``IMS_PER_BATCH`` tuboids).
    n_rounds: int = 50000
    #: Rounds between checkpoints (``output/model_final.pth``) and validation passes.
    checkpoint_period: int = 50
    #: Class imbalance: ``sampler`` draws training tuboids with probability ∝ ``n_class ** -power``,
    #: ``loss`` weights the cross-entropy by the same factors (normalised to a mean of 1 per tuboid),
    #: ``none`` samples tuboids uniformly (the original).
    class_balance: str = "sampler"
    #: 1 = every class equally often; 0.5 (default) = square-root balancing, which lifts rare classes a lot
    #: without showing the handful of examples of a 5-tuboid class as often as a 1000-tuboid one (that
    #: mostly teaches the network those five tuboids by heart).
    class_balance_power: float = 0.5
    #: Seed of the sampler and augmentations (the original was unseeded).
    seed: int = 0

    # -- loading and inference ----------------------------------------------------------------------------
    #: DataLoader worker processes preparing training tuboids (0 = in the training process).
    n_workers: int = 0
    #: Tuboids per forward pass during validation and prediction (memory bound, not a hyper-parameter).
    inference_batch_size: int = 16
    #: Decoded tuboids kept in memory per process (tiles at ``input_size``); 0 disables the cache.
    cache_tuboids: int = 128

    @property
    def label_map(self) -> LabelMap:
        return LabelMap.from_config(self.labels)

    @property
    def n_classes(self) -> int:
        return self.label_map.n_classes

    def problems(self) -> list[str]:
        """Every problem of this configuration (empty when valid)."""
        problems = []
        try:
            LabelMap.from_config(self.labels)
        except LabelError as exc:
            problems.append(f"LABELS: {exc}")
        for name, allowed in (
            ("backbone", BACKBONES),
            ("pooling", POOLINGS),
            ("class_balance", CLASS_BALANCES),
            ("annotation_rule", ANNOTATION_RULES),
            ("optimizer", OPTIMIZERS),
            ("validation_split", VALIDATION_SPLITS),
        ):
            if getattr(self, name) not in allowed:
                problems.append(f"{name.upper()} {getattr(self, name)!r} not in {allowed}")
        for name in ("n_shots", "ims_per_batch", "checkpoint_period", "inference_batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name.upper()} must be >= 1")
        if self.input_size < 32:
            problems.append("INPUT_SIZE must be >= 32 (a ResNet downsamples 32x)")
        for name in ("n_rounds", "n_workers", "cache_tuboids", "min_train_per_label"):
            if getattr(self, name) < 0:
                problems.append(f"{name.upper()} must be >= 0")
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name.upper()} must be in [0, 1)")
        if self.base_lr <= 0 or self.weight_decay < 0 or not 0 <= self.lr_momentum < 1:
            problems.append("need BASE_LR > 0, WEIGHT_DECAY >= 0 and LR_MOMENTUM in [0, 1)")
        if not 0 < self.gamma <= 1:
            problems.append("GAMMA must be in (0, 1]")
        if self.class_balance_power < 0:
            problems.append("CLASS_BALANCE_POWER must be >= 0")
        return problems

#: Module-level names of the config's file operations (``load_config(path)``, ``save_config(config, path)``).
load_config = ItcConfig.load
save_config = ItcConfig.save
bundle_config = ItcConfig.from_bundle
