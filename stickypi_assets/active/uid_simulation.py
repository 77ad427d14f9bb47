"""The UID in the simulated annotation loop: synthetic card images, a held-out deployment, maskAL certainty.

Like :mod:`stickypi_assets.active.itc_simulation`, two synthetic deployments of different seeds (other devices,
cards and insects): the **pool**, whose images the annotator outlines when asked (the generator's true polygons),
and the **test** deployment, never labeled, on which each round's detector is scored (F1 of instance matching at
the config's ``MATCH_IOU``, the UID's validation metric). Every round trains the small Mask R-CNN **from random
init** with the same number of iterations whatever the number of labels (equal compute per strategy), through the
platform's own :func:`~stickypi_assets.ml.uid.train.train` on exactly the labeled images. Scores are those table
``image_scores`` holds: maskAL certainty over MC-dropout passes of the ROI heads (box-only for the whole pool, with
masks for the least certain fifth), detections, and the backbone embedding for diversity.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stickypi_assets.active.mixes import DEFAULT_IMAGE_MIX
from stickypi_assets.active.scoring import PoolImage, score_images
from stickypi_assets.active.simulation import MixFactory, SyntheticStage, strategies
from stickypi_assets.active.uid_mc import McDropoutMaskRCNN
from stickypi_assets.formats.names import parse_stem
from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.dataset import AnnotatedImage, annotated_image
from stickypi_assets.ml.uid.model import MaskRCNNDetector
from stickypi_assets.ml.uid.predict import predict_image
from stickypi_assets.ml.uid.train import train
from stickypi_assets.ml.uid.validate import EvaluatedImage, compute_metrics, f1_score, match_records
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate

log = logging.getLogger(__name__)

#: A CPU-sized UID: the demo's narrow ResNet-18-FPN Mask R-CNN on 256 px crops, a fixed budget of iterations.
SIM_UID_CONFIG = UidConfig(
    backbone="resnet18_fpn", pretrained="none", fpn_channels=64, box_head_dim=256, mask_head_channels=64,
    crop_size=256, ims_per_batch=2, base_lr=0.02, warmup_iters=40, steps=[90, 110], max_iter=120,
    checkpoint_period=10**6, test_period=10**6, printing_period=10**6, grad_clip_norm=10.0, tile_size=704,
    tile_overlap=64, score_threshold=0.5, box_nms_thresh=0.3, match_iou=0.33, min_max_obj_size=[6, 400],
    detections_per_image=200,
)  # fmt: skip


@dataclass(frozen=True)
class UidDeployments:
    """The two synthetic deployments (640 x 480 frames, one an hour): the pool of ``pool_devices`` devices, the
    test deployment of one device of another seed."""

    pool_seed: int = 21
    test_seed: int = 22
    pool_devices: int = 2
    days: int = 1
    width: int = 640
    height: int = 480

    def config(self, seed: int, devices: int) -> SynthConfig:
        return SynthConfig(devices=devices, days=self.days, seed=seed, width=self.width, height=self.height,
                           arrival_rate_day=5, arrival_rate_night=1.5, interval_s=3600, jpeg_quality=90)  # fmt: skip


def _images(workdir: Path, name: str, deployment: SynthConfig, config: UidConfig) -> list[tuple[AnnotatedImage, list]]:
    """Generate a deployment and read its ground-truth SVGs (true outlines, the JPEG embedded): each as a UID
    training image and its true instances."""
    store = LocalObjectStore(workdir / f"{name}-store")
    if not any(store.list("ground_truth/uid/")):
        generate(deployment, store)
    images = []
    for info in sorted(store.list("ground_truth/uid/"), key=lambda i: i.key):
        doc = read_uid_svg(store.get_bytes(info.key))
        images.append((annotated_image(doc, info.key.rsplit("/", 1)[-1], config), list(doc.instances)))
    return images


class UidStage(SyntheticStage):
    """:class:`~stickypi_assets.active.simulation.Stage` for the UID (see the module docstring)."""

    metric = "f1"

    def __init__(self, workdir: str | Path, *, deployments: UidDeployments = UidDeployments(),
                 config: UidConfig = SIM_UID_CONFIG, passes: int = 6, dropout: float = 0.25, mask_share: float = 0.2,
                 device: str = "cpu") -> None:  # fmt: skip
        super().__init__(workdir, config, passes, dropout)
        self.mask_share, self.device = mask_share, device
        pool_deployment = deployments.config(deployments.pool_seed, deployments.pool_devices)
        pool = _images(self.workdir, "pool", pool_deployment, config)
        self.test = _images(self.workdir, "test", deployments.config(deployments.test_seed, 1), config)
        self.items = {image.name.removesuffix(".svg"): image for image, _ in pool}
        self.decoded = {stem: image.decode() for stem, image in self.items.items()}
        rows = []
        for stem in self.items:
            name = parse_stem(stem, check_epoch=False)
            rows.append({"item": stem, "device": name.device, "datetime": name.datetime,
                         "n_true": len(self.items[stem].polygons)})  # fmt: skip
        self.pool = pd.DataFrame(rows)

    # -- the loop's three calls --------------------------------------------------------------------------------

    def train(self, labeled: Sequence[str], seed: int) -> MaskRCNNDetector:
        bundle = self.workdir / "round"
        shutil.rmtree(bundle, ignore_errors=True)
        config = self.config.replace(seed=int(seed))
        result = train(bundle, restart=True, device=self.device, progress=False, config=config,
                       images=([self.items[i] for i in labeled], []))  # fmt: skip
        detector = MaskRCNNDetector(config, device=self.device)
        detector.load_weights(result.weights)
        detector.eval()
        return detector

    def evaluate(self, model: MaskRCNNDetector) -> dict[str, float]:
        evaluated = []
        for image, gt in self.test:
            pred = predict_image(model, image.decode(), self.config)
            evaluated.append(EvaluatedImage(image.name, image.width, image.height, gt, pred))
        records = [r for im in evaluated for r in match_records(im.gt, im.pred, im.filename, self.config)]
        overall = compute_metrics(records, self.config)["overall"]
        precision, recall = overall["precision"], overall["recall"]
        return {"f1": float(f1_score(precision, recall) or 0.0), "precision": float(precision or 0.0),
                "recall": float(recall or 0.0)}  # fmt: skip

    def score(self, model: MaskRCNNDetector, unlabeled: Sequence[str], labeled: Sequence[str], seed: int):
        """The pool with ``image_scores``' columns; labeled rows are kept (diversity measures from them) but get
        no uncertainty (they are never candidates of a score)."""
        sampler = McDropoutMaskRCNN(model, self.config, passes=self.passes, dropout=self.dropout, seed=seed)
        ids = list(unlabeled) + list(labeled)
        info = self.pool.set_index("item")
        pool = [PoolImage(i, info.at[i, "device"], info.at[i, "datetime"], lambda i=i: self.decoded[i]) for i in ids]
        table = score_images(sampler, pool, mask_share=self.mask_share)
        table.loc[table["item"].isin(set(labeled)), ["maskal_uncertainty", "maskal_certainty"]] = np.nan
        return table


def uid_mixes() -> dict[str, MixFactory]:
    """The strategies the benchmark compares (random is the baseline; ``mix`` is the queue's default)."""
    return strategies("images", "maskal", DEFAULT_IMAGE_MIX)
