"""SIM bundle configuration: one flat dataclass with a default for every key, saved as YAML.

A bundle keeps it in ``<bundle>/config/config.yaml``. The original SIM config was already flat UPPER_CASE
(``IMS_PER_BATCH``, ``SIAM_ROUNDS``, ``GAMMA``, ...; reference 4.5), so original files load as they are.
The tracker constants that the original hard-coded (match threshold 0.5, conjoint threshold 0.25, minimum
tuboid length) are keys here too, and so are the new ones (spatial gating radius, network widths).

Defaults are the original ``default_config`` values (reference 4.5 table) except ``N_WORKERS``: pairs are
assembled in-process from cached crops (see :mod:`stickypi_assets.ml.sim.dataset`), so loader workers buy
nothing; the key is still accepted so original files load without warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from stickypi_assets.ml.bundles import BundleConfig

#: Name of the bundle (also the API/S3 name and the ``algo_name`` of the original).
BUNDLE_NAME = "siamese-insect-matcher"


@dataclass
class SimConfig(BundleConfig):
    """Everything that shapes a SIM model, its training and the tracker. Attributes = lower-case YAML keys."""

    WHAT: ClassVar[str] = "SIM"
    DESCRIPTION: ClassVar[str] = "Siamese Insect Matcher configuration"

    # -- training (reference 4.5) ----------------------------------------------------------------------
    #: Pairs per training round, each a positive or a negative with probability 0.5 (original: 32;
    #: manuscript: 128).
    ims_per_batch: int = 32
    #: Rounds between saves of ``output/model_final.pth`` followed by a validation pass, counted within each
    #: stage; every stage's last round is saved too (original: 100, without that final save).
    checkpoint_period: int = 100
    #: Rounds of stage 1, which trains the convolutional branch and similarity head on ``S`` (original: 300;
    #: manuscript: 500).
    siam_rounds: int = 300
    #: Adam learning rate at round 0 of stage 1 (original: 2e-5).
    siam_base_lr: float = 2e-5
    #: Rounds of stage 2, which trains only the fusion MLP on ``M`` (``S``, ``Q`` without gradients; original: 300).
    dist_ar_rounds: int = 300
    #: Adam learning rate at round 0 of stage 2 (original: 0.05; high because only the tiny MLP learns).
    dist_ar_base_lr: float = 0.05
    #: Rounds of stage 3, which fine-tunes the whole network on ``M`` (original: 500; manuscript: 5000).
    final_rounds: int = 500
    #: Adam learning rate at round 0 of stage 3 (original: 2e-5).
    final_base_lr: float = 2e-5
    #: lr at round r of a stage = base_lr * GAMMA ** r (r restarts at 0 in each stage).
    gamma: float = 0.999
    #: Accepted for compatibility with original files; Adam has no momentum parameter (unused there too).
    lr_momentum: float = 0.9
    #: Accepted for compatibility; batches are assembled in-process from cached crops.
    n_workers: int = 0
    #: Seed of the training sampler and augmentations (the original was unseeded).
    seed: int = 0
    #: Pairs per forward pass during validation and inference (memory bound, not a hyper-parameter).
    inference_batch_size: int = 256

    # -- network (reference 4.4) -----------------------------------------------------------------------
    #: Side of the square grey crops fed to the network.
    crop_size: int = 105
    #: Output channels of the four convolutions of the shared branch (reference: 64, 128, 128, 256).
    #: Smaller widths give the same topology for tests and CPU experiments.
    channels: list[int] = field(default_factory=lambda: [64, 128, 128, 256])
    #: Size of the embedding f(x) (reference: 1024).
    embedding_size: int = 1024

    # -- matching and tracking (reference 4.6-4.7) -----------------------------------------------------
    #: Pairs further apart in time are never matched (seconds, 12 h).
    max_delta_t_to_match: float = 43200.0
    #: ``match`` returns 0 below this score (consecutive frames and conjoint neighbour pairs).
    match_threshold: float = 0.5
    #: Minimum score to stitch a tuboid tail to a later head.
    stitch_threshold: float = 0.5
    #: Minimum mean neighbour score to merge two conjoint tuboids.
    conjoint_threshold: float = 0.25
    #: Tuboids with fewer frames are discarded ("more than 3 annotations" in the original).
    min_tuboid_frames: int = 4
    #: Two instances whose centroids are further apart than this (px) are never scored (match = 0). The
    #: original scored every pair, which is quadratic in the number of insects; insects on a sticky card
    #: move a few to a few tens of pixels between frames, and the network's ``log_d`` input makes
    #: far-apart pairs negatives anyway. 200 px is ~3 insect lengths at the usual 2592 x 1944 resolution.
    gating_radius_px: float = 200.0

    # -- outputs (reference 4.8) -----------------------------------------------------------------------
    #: Frame rate (frames per second) of the tracking video, one video frame per image (original: 4).
    video_fps: float = 4.0
    #: ``[width, height]`` (px) every video frame is resized to (original: 1600 x 1200, the 4:3 shape of the
    #: 2592 x 1944 camera images).
    video_size: list[int] = field(default_factory=lambda: [1600, 1200])

    def problems(self) -> list[str]:
        """Every problem of this configuration (empty when valid)."""
        problems = []
        for name in ("ims_per_batch", "checkpoint_period", "inference_batch_size", "crop_size", "embedding_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name.upper()} must be >= 1")
        for name in ("siam_rounds", "dist_ar_rounds", "final_rounds", "min_tuboid_frames"):
            if getattr(self, name) < 0:
                problems.append(f"{name.upper()} must be >= 0")
        if not 0 < self.gamma <= 1:
            problems.append("GAMMA must be in (0, 1]")
        for name in ("match_threshold", "stitch_threshold", "conjoint_threshold"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name.upper()} must be in [0, 1]")
        if self.max_delta_t_to_match <= 0:
            problems.append("MAX_DELTA_T_TO_MATCH must be > 0")
        if self.gating_radius_px <= 0:
            problems.append("GATING_RADIUS_PX must be > 0")
        if len(self.channels) != 4 or any(c < 1 for c in self.channels):
            problems.append("CHANNELS must be four positive integers")
        if self.crop_size < 40:
            # 4 convolutions (k 10, 7, 4, 4) and 3 poolings need at least this much input.
            problems.append("CROP_SIZE must be >= 40")
        if len(self.video_size) != 2 or any(v < 16 for v in self.video_size):
            problems.append("VIDEO_SIZE must be [width, height], each >= 16")
        if self.video_fps <= 0:
            problems.append("VIDEO_FPS must be > 0")
        return problems

#: Module-level names of the config's file operations (``load_config(path)``, ``save_config(config, path)``).
load_config = SimConfig.load
save_config = SimConfig.save
bundle_config = SimConfig.from_bundle
