"""The ITC in the simulated annotation loop: synthetic tuboids, a held-out deployment, MC-dropout scores.

Two synthetic deployments from different seeds (and so different devices, cards and insects): the **pool**, whose
tuboids the annotator labels when asked, and the **test** deployment, never labeled, on which each round's model
is scored. Testing on another deployment rather than a split of the pool measures what matters in the field
(transfer to new cards), and keeps the test set out of every strategy's reach.

Each round trains the ITC **from random init** with the same number of rounds whatever the number of labels (so
strategies are compared at equal compute), through the platform's own :func:`~stickypi_assets.ml.itc.train.train`
on an :class:`~stickypi_assets.ml.itc.dataset.ItcData` holding just the labeled tuboids. Scores are those the
``tuboid_scores`` table holds: entropy, margin, BALD and frame disagreement over MC-dropout passes, and the
pooled features as embeddings.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from stickypi_assets.active.itc_mc import sample_inputs
from stickypi_assets.active.mixes import DEFAULT_TUBOID_MIX
from stickypi_assets.active.simulation import MixFactory, SyntheticStage, strategies
from stickypi_assets.active.uncertainty import all_scores
from stickypi_assets.formats.tuboids import TuboidId
from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.itc.dataset import DatasetReport, ItcData, ItcItem, TileCache, load_itc_data
from stickypi_assets.ml.itc.inputs import inference_shot_indices, normalise
from stickypi_assets.ml.itc.model import load_checkpoint
from stickypi_assets.ml.itc.predict import ItcClassifier
from stickypi_assets.ml.itc.train import train
from stickypi_assets.ml.itc.validate import evaluate_items, evaluation_metrics
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.taxa import DEFAULT_TAXA
from stickypi_assets.synth.tuboids import synth_labels, write_synth_tuboids

log = logging.getLogger(__name__)

#: A CPU-sized ITC: ResNet-18 on 4 shots of 64 px, AdamW (the learning test's recipe), a fixed training budget.
SIM_ITC_CONFIG = ItcConfig(
    labels=synth_labels(DEFAULT_TAXA, catch_all=False),
    backbone="resnet18",
    input_size=64,
    n_shots=4,
    ims_per_batch=16,
    optimizer="adamw",
    base_lr=1e-3,
    gamma=0.98,
    n_rounds=80,
    checkpoint_period=1000,
    inference_batch_size=64,
    cache_tuboids=4096,
)


@dataclass(frozen=True)
class ItcDeployments:
    """The two synthetic deployments (small frames, one an hour; enough insects of every taxon)."""

    pool_seed: int = 11
    test_seed: int = 12
    devices: int = 2
    days: int = 2
    width: int = 1296
    height: int = 972

    def config(self, seed: int) -> SynthConfig:
        return SynthConfig(devices=self.devices, days=self.days, seed=seed, width=self.width, height=self.height,
                           arrival_rate_day=8, arrival_rate_night=3, interval_s=3600, jpeg_quality=90)  # fmt: skip


def _tuboids(workdir: Path, name: str, deployment: SynthConfig, config: ItcConfig, cache: TileCache) -> list[ItcItem]:
    """Generate a deployment, cut its tuboids with their true labels, and read them as ITC items."""
    store = LocalObjectStore(workdir / f"{name}-store")
    if not (workdir / f"{name}-tuboids" / "database.db").exists():
        generate(replace(deployment, taxa=tuple(DEFAULT_TAXA)), store)
        write_synth_tuboids(store, workdir / f"{name}-tuboids")
    data = load_itc_data(workdir / f"{name}-tuboids", config, cache=cache)
    return sorted(data.train + data.validation, key=lambda i: i.tuboid_id)


class ItcStage(SyntheticStage):
    """:class:`~stickypi_assets.active.simulation.Stage` for the ITC (see the module docstring)."""

    metric = "macro_recall"

    def __init__(self, workdir: str | Path, *, deployments: ItcDeployments = ItcDeployments(),
                 config: ItcConfig = SIM_ITC_CONFIG, passes: int = 10, dropout: float = 0.25) -> None:  # fmt: skip
        super().__init__(workdir, config, passes, dropout)
        self.cache = TileCache(config.input_size, capacity=config.cache_tuboids)
        self.items = {i.tuboid_id: i for i in _tuboids(self.workdir, "pool", deployments.config(deployments.pool_seed),
                                                         config, self.cache)}  # fmt: skip
        self.test = _tuboids(self.workdir, "test", deployments.config(deployments.test_seed), config, self.cache)
        self.label_map = config.label_map
        rows = []
        for item in self.items.values():
            tid = TuboidId.parse(item.tuboid_id)
            rows.append({"item": item.tuboid_id, "device": tid.device, "datetime": tid.start, "true_label": item.label})
        self.pool = pd.DataFrame(rows)

    # -- the loop's three calls --------------------------------------------------------------------------------

    def train(self, labeled: Sequence[str], seed: int) -> ItcClassifier:
        bundle = self.workdir / "round"
        shutil.rmtree(bundle, ignore_errors=True)
        items = [self.items[i] for i in labeled]
        data = ItcData(train=items, validation=[], label_map=self.label_map, report=DatasetReport(), cache=self.cache)
        config = self.config.replace(seed=int(seed))
        result = train(bundle, restart=True, progress=False, config=config, data=data)
        net, net_config, _ = load_checkpoint(result.weights)
        return ItcClassifier(net, net_config)

    def evaluate(self, model: ItcClassifier) -> dict[str, float]:
        probabilities = evaluate_items(model.net, self.test, model.config, cache=self.cache)
        metrics = evaluation_metrics(probabilities, [i.label for i in self.test], self.label_map.n_classes)
        return {k: float(metrics[k]) for k in ("accuracy", "macro_recall", "macro_f1") if metrics.get(k) is not None}

    def inputs(self, tuboid_id: str) -> tuple[np.ndarray, np.ndarray]:
        item = self.items[tuboid_id]
        tiles, sizes = self.cache.get(item.directory)
        chosen = inference_shot_indices(len(tiles), self.config.n_shots)
        return normalise(tiles[chosen]), sizes[chosen]

    def score(self, model: ItcClassifier, unlabeled: Sequence[str], labeled: Sequence[str], seed: int) -> pd.DataFrame:
        """The pool with ``tuboid_scores``' columns; labeled rows are kept (diversity measures from them)."""
        ids = list(unlabeled) + list(labeled)
        out = sample_inputs(model, [self.inputs(i) for i in ids], passes=self.passes, dropout=self.dropout, seed=seed)
        scores = all_scores(out.mc_probs, out.shot_probs)
        frame = self.pool.set_index("item").loc[ids].reset_index()
        for name, values in scores.items():
            frame[name] = values
        frame.loc[len(unlabeled) :, list(scores)] = np.nan  # labeled items are never candidates of a score
        frame["label"] = out.probs.argmax(axis=1)
        frame["det_labels"] = [np.array([lab]) for lab in frame["label"]]
        frame["embedding"] = list(out.embeddings)
        return frame


def itc_mixes() -> dict[str, MixFactory]:
    """The strategies the benchmark compares (random is the baseline; ``mix`` is the queue's default)."""
    return strategies("tuboids", "margin", DEFAULT_TUBOID_MIX)
