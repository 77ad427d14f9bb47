"""Annotations and CPU-sized training recipes from a synthetic deployment's ground truth: what the demo starts with.

No pretrained weights are needed or downloaded. :func:`write_demo_annotations` plays the annotators: it puts the
generator's ground truth into the object store exactly where real annotations go (``annotations/uid/*.svg``,
``annotations/sim/*.svg``, ``annotations/itc/**``, see :mod:`stickypi_assets.lifecycle.training`) together with each
stage's training configuration (``ml/<bundle>/training/config.yaml``). The model assets ``uid_model``,
``sim_model`` and ``itc_model`` then train, validate and register the models from random init as they would in
production, so ``stickypi demo`` runs the whole platform on a 2-core machine:

* UID: a ResNet-18-FPN Mask R-CNN with narrow heads on 256 px crops of the ground-truth SVGs (the
  busiest frames first, where the insects are), 512 px tiles at inference;
* SIM: the reference Siamese topology with narrower layers on grouped pairs of consecutive frames;
* ITC: a ResNet-18 on 4 shots of 64 px, one label per synthetic taxon plus an ``Insecta`` catch-all, trained on
  the tuboids the trained UID and SIM make of the training deployment, labelled from its ground truth by the
  simulated annotator (:func:`write_itc_annotations`, :mod:`stickypi_assets.synth.tuboid_labels`): as in
  production, where annotators label the SIM's tuboids, the ITC learns from tiles cut as it will see them.

Train on a deployment *other* than the one evaluated (another seed): the demo does, so its accuracy
figures are on insects the models never saw.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.stages import STAGES
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.storage.keys import RAW_IMAGES, ground_truth_key, training_config_key
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.synth.tuboid_labels import TuboidLabels

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
    """The ITC for 2 CPU cores (about a minute of training; ``ml/itc/test_learning.py`` measures the recipe).

    Full class balance (``class_balance_power=1``: every taxon drawn equally often): a training deployment holds
    3-6 insects of its rarest taxon (Culicidae) against 20-40 of the common ones, and with the default square-root
    balancing the chain found 0.70-0.73 of the Culicidae captures of the scored deployments (seeds 1 and 2, the rest
    called Sciaridae); drawn as often as the others, 0.80-1.00, without a loss elsewhere (measured with the same UID
    and SIM models and tuboids, only the ITC retrained).
    """
    from stickypi_assets.ml.itc.config import ItcConfig
    from stickypi_assets.synth.tuboids import SYNTH_LABELS

    return ItcConfig(
        labels=SYNTH_LABELS, backbone="resnet18", input_size=64, n_shots=4, ims_per_batch=16, optimizer="adamw",
        base_lr=1e-3, gamma=0.97, n_rounds=150, checkpoint_period=1000, inference_batch_size=32,
        class_balance_power=1.0,
    )  # fmt: skip


def ground_truth_uid_svgs(store: ObjectStore, n: int) -> list[str]:
    """Keys of the ``n`` ground-truth UID SVGs with the most instances (one per image, spread over devices)."""
    images = pd.read_parquet(io.BytesIO(store.get_bytes(ground_truth_key("images.parquet"))))
    images = images[(images.status == "ok") & images.svg_key.notna()]
    return images.sort_values(["n_instances", "key"], ascending=[False, True]).svg_key.head(n).tolist()


def _upload_folder(folder: Path, store: ObjectStore, prefix: str) -> int:
    n = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            store.put_file(f"{prefix}{path.relative_to(folder).as_posix()}", path)
            n += 1
    return n


def write_demo_annotations(
    training: ObjectStore, store: ObjectStore, *, uid_iters: int | None = None, n_uid_svgs: int = 12,
    sim_every: int = 2,
) -> dict[str, int]:  # fmt: skip
    """Put ``training``'s ground truth into ``store`` as the UID's and SIM's annotations, and the training configs.

    UID: the ``n_uid_svgs`` busiest ground-truth SVGs; SIM: grouped pairs of every ``sim_every``-th pair of
    consecutive frames. The ITC's annotations need a trained UID and SIM (:func:`write_itc_annotations`).
    Earlier demo annotations (all stages) are replaced. Returns the number of annotation files per stage.
    """
    from stickypi_assets.synth.sim_pairs import ground_truth_pairs, write_pair_svgs

    for stage in STAGES.values():
        for info in list(store.list(stage.annotation_prefix)):
            store.delete(info.key)
    counts = {}
    uid = STAGES["uid"].annotation_prefix
    keys = ground_truth_uid_svgs(training, n_uid_svgs)
    for key in keys:
        store.put_bytes(f"{uid}{key.rsplit('/', 1)[-1]}", training.get_bytes(key), content_type="image/svg+xml")
    counts["uid"] = len(keys)
    with tempfile.TemporaryDirectory(prefix="stickypi-demo-annotations-") as tmp:
        write_pair_svgs(ground_truth_pairs(training, every=sim_every), Path(tmp) / "sim")
        counts["sim"] = _upload_folder(Path(tmp) / "sim", store, STAGES["sim"].annotation_prefix)
        uid_config = DEMO_UID_CONFIG if uid_iters is None else DEMO_UID_CONFIG.replace(max_iter=uid_iters)
        for stage, config in (("uid", uid_config), ("sim", DEMO_SIM_CONFIG), ("itc", demo_itc_config())):
            path = config.save(Path(tmp) / f"{stage}.yaml")
            store.put_file(training_config_key(STAGES[stage].bundle_name), path)
    return counts


def write_itc_annotations(
    training: ObjectStore, store: ObjectStore, uid_bundle: Path, sim_bundle: Path, *, progress: bool = False
) -> TuboidLabels:
    """The ITC's annotations as production makes them: the platform's tuboids of ``training``, labelled.

    The UID (``uid_bundle``) segments every raw image of the training deployment and the SIM (``sim_bundle``)
    tracks each device's frames into tuboids, as ``stickypi uid predict-dir`` and ``sim predict-dir`` do; the
    simulated annotator labels each tuboid from the ground truth (:func:`label_tuboids`: a tuboid that follows no
    single insect stays unlabelled). The tuboid folders and their ``database.db`` replace
    ``annotations/itc/`` in ``store``. Returns the labels (what was labelled, what was not and why).
    """
    from stickypi_assets.formats.tuboids import iter_tuboid_dirs
    from stickypi_assets.ml.sim.predict import predict_dir as track_dir
    from stickypi_assets.ml.uid.predict import predict_dir as segment_dir
    from stickypi_assets.synth.tuboid_labels import label_tuboids

    prefix = STAGES["itc"].annotation_prefix
    with tempfile.TemporaryDirectory(prefix="stickypi-demo-itc-") as tmp:
        images, tuboids = Path(tmp) / "images", Path(tmp) / "tuboids"
        for info in training.list(f"{RAW_IMAGES}/"):
            path = images / info.key.removeprefix(f"{RAW_IMAGES}/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(training.get_bytes(info.key))
        for device_dir in sorted(p for p in images.iterdir() if p.is_dir()):
            segment_dir(uid_bundle, device_dir, progress=progress)
            track_dir(sim_bundle, device_dir, progress=progress)
            for folder in iter_tuboid_dirs(device_dir / "tuboids"):  # the tuboids, not the SIM's videos
                shutil.copytree(folder, tuboids / folder.parent.name / folder.name)
        tuboids.mkdir(exist_ok=True)
        labels = label_tuboids(tuboids, training)
        for info in list(store.list(prefix)):
            store.delete(info.key)
        _upload_folder(tuboids, store, prefix)
    return labels
