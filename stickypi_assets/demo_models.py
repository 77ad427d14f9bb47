"""Small models trained on a synthetic deployment's ground truth: what the demo (and a new user) starts with.

No pretrained weights are needed or downloaded. Each function fills a bundle in the original layout
(``config/``, ``data/``, ``output/``) from the generator's ground truth and trains it from random init with
a CPU-sized configuration, so ``stickypi demo`` can run the whole chain on a 2-core machine:

* UID: a ResNet-18-FPN Mask R-CNN with narrow heads on 256 px crops of the ground-truth SVGs (the
  busiest frames first, where the insects are), 512 px tiles at inference;
* SIM: the reference Siamese topology with narrower layers on grouped pairs of consecutive frames;
* ITC: a ResNet-18 on 4 shots of 64 px from the ground-truth tuboids, one label per synthetic taxon plus
  an ``Insecta`` catch-all.

Train on a deployment *other* than the one evaluated (another seed): the demo does, so its accuracy
figures are on insects the models never saw.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd

from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.synth.generator import GT_PREFIX

#: The UID for 2 CPU cores: ~0.4 s per iteration, learns the synthetic insects in a few hundred iterations.
#: Inference: one 1408 px tile covers a 1296 x 972 demo frame (0.8 s per frame; 512 px tiles took 2.2 s for
#: the same precision/recall); box NMS 0.3 and score 0.7 remove the duplicate outlines a briefly trained
#: model makes (measured on 10 unseen frames: precision 0.46 -> 0.91 at recall 0.93, IoU 0.33).
DEMO_UID_CONFIG = UidConfig(
    backbone="resnet18_fpn", pretrained="none", fpn_channels=64, box_head_dim=256, mask_head_channels=64,
    crop_size=256, ims_per_batch=2, base_lr=0.02, warmup_iters=100, steps=[450, 550], max_iter=600,
    checkpoint_period=200, grad_clip_norm=10.0, tile_size=1408, tile_overlap=128, score_threshold=0.7,
    box_nms_thresh=0.3, match_iou=0.33, min_max_obj_size=[8, 600], detections_per_image=300,
)  # fmt: skip

#: The SIM for 2 CPU cores: about a minute of training (test_tracking_accuracy.py measures what it reaches).
DEMO_SIM_CONFIG = SimConfig(
    channels=[16, 32, 32, 64], embedding_size=256, ims_per_batch=32, checkpoint_period=1000, siam_rounds=120,
    siam_base_lr=1e-3, dist_ar_rounds=60, dist_ar_base_lr=0.05, final_rounds=20, final_base_lr=1e-4,
)  # fmt: skip


def demo_itc_config():
    """The ITC for 2 CPU cores (about a minute of training; ``ml/itc/test_learning.py`` measures the recipe)."""
    from stickypi_assets.ml.itc.config import ItcConfig
    from stickypi_assets.synth.tuboids import SYNTH_LABELS

    return ItcConfig(
        labels=SYNTH_LABELS, backbone="resnet18", input_size=64, n_shots=4, ims_per_batch=16, optimizer="adamw",
        base_lr=1e-3, gamma=0.97, n_rounds=150, checkpoint_period=1000, inference_batch_size=32,
    )  # fmt: skip


def _fresh_bundle(bundle_dir: Path) -> None:
    for sub in ("data", "output"):
        shutil.rmtree(bundle_dir / sub, ignore_errors=True)
    (bundle_dir / "data").mkdir(parents=True)


def ground_truth_uid_svgs(store: ObjectStore, n: int) -> list[str]:
    """Keys of the ``n`` ground-truth UID SVGs with the most instances (one per image, spread over devices)."""
    images = pd.read_parquet(io.BytesIO(store.get_bytes(f"{GT_PREFIX}/images.parquet")))
    images = images[(images.status == "ok") & images.svg_key.notna()]
    return images.sort_values(["n_instances", "key"], ascending=[False, True]).svg_key.head(n).tolist()


def train_uid_on_ground_truth(
    store: ObjectStore, bundle_dir: str | Path, *, n_svgs: int = 12, config: UidConfig = DEMO_UID_CONFIG,
    max_iter: int | None = None, progress: bool = True,
):  # fmt: skip
    """Copy ``n_svgs`` ground-truth SVGs into ``<bundle>/data`` and train the UID from random init."""
    from stickypi_assets.ml.uid.config import save_config
    from stickypi_assets.ml.uid.train import train

    bundle_dir = Path(bundle_dir)
    _fresh_bundle(bundle_dir)
    for key in ground_truth_uid_svgs(store, n_svgs):
        (bundle_dir / "data" / key.rsplit("/", 1)[-1]).write_bytes(store.get_bytes(key))
    save_config(config, bundle_dir / "config" / "config.yaml")
    return train(bundle_dir, restart=True, max_iter=max_iter, progress=progress)


def train_sim_on_ground_truth(
    store: ObjectStore, bundle_dir: str | Path, *, every: int = 2, config: SimConfig = DEMO_SIM_CONFIG
):
    """Write grouped pairs of consecutive ground-truth frames into ``<bundle>/data`` and train the SIM."""
    from stickypi_assets.ml.sim.config import save_config
    from stickypi_assets.ml.sim.train import train
    from stickypi_assets.synth.sim_pairs import ground_truth_pairs, write_pair_svgs

    bundle_dir = Path(bundle_dir)
    _fresh_bundle(bundle_dir)
    write_pair_svgs(ground_truth_pairs(store, every=every), bundle_dir / "data")
    save_config(config, bundle_dir / "config" / "config.yaml")
    return train(bundle_dir, restart=True)


def train_itc_on_ground_truth(store: ObjectStore, bundle_dir: str | Path, *, config=None, progress: bool = True):
    """Cut the ground truth's tuboids (labelled by taxon) into ``<bundle>/data`` and train the ITC."""
    from stickypi_assets.ml.itc.config import save_config
    from stickypi_assets.ml.itc.train import train
    from stickypi_assets.synth.tuboids import write_synth_tuboids

    bundle_dir = Path(bundle_dir)
    _fresh_bundle(bundle_dir)
    write_synth_tuboids(store, bundle_dir / "data")
    save_config(config or demo_itc_config(), bundle_dir / "config" / "config.yaml")
    return train(bundle_dir, restart=True, progress=progress)
