"""The one stage table: what each model stage is, declared once (in the spirit of torchvision's model registry).

A stage (``uid``, ``sim``, ``itc``) is a model the platform trains from annotations, versions in the registry and
runs in an asset. Its entry names its bundle, its config class, the functions that train, validate and load it,
the metric promotion compares and which annotation files it learns from. The registry, training, the model
resources and assets, the annotation sensors, the config reference, the CLI and the demo all read this table,
so adding a stage is one entry here plus its ``ml/<stage>/`` package (a contract test runs over every entry).

The functions are referenced by module and name and imported on first call (:class:`StageFunction`): the table
imports no torch, so the CLI and the registry stay quick to start, and a stage's heavy code loads only when it
is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stickypi_assets.ml.bundles import BundleConfig
from stickypi_assets.ml.itc.config import BUNDLE_NAME as ITC_BUNDLE
from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.sim.config import BUNDLE_NAME as SIM_BUNDLE
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.uid.config import BUNDLE_NAME as UID_BUNDLE
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.storage.keys import annotation_prefix


@dataclass(frozen=True)
class StageFunction:
    """``module:name`` of a stage's function, imported when first called."""

    module: str
    name: str

    def resolve(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.module}:{self.name}"


@dataclass(frozen=True)
class StageCli:
    """The help texts of a stage's ``stickypi <stage> train`` and ``validate`` (one spelling for every stage)."""

    train: str
    validate: str
    #: Glob of the training files under ``<bundle>/data/`` (empty: the folder itself), for the bundle's help.
    data: str
    restart: str
    #: Help of ``--max-iter``, for stages whose length the command line may override.
    max_iter: str | None = None


@dataclass(frozen=True)
class Stage:
    """One model stage. The three functions share one signature across stages:

    * ``trainer(bundle_dir, *, restart, device, progress)`` trains ``<bundle>/output/model_final.pth`` from
      ``<bundle>/data`` with ``<bundle>/config/config.yaml``;
    * ``validator(bundle_dir, out_dir, *, device) -> dict`` validates it on the bundle's validation split; the
      dict holds :attr:`metric`;
    * ``loader(bundle_dir, *, device) -> (model, config, version)`` loads it for prediction (version = md5 of
      the weights, recorded on every output row).
    """

    #: Short name: registry, annotations (``annotations/<name>/``), assets (``<name>_model``), CLI, variables.
    name: str
    #: Upper-case abbreviation for messages (``UID``).
    title: str
    #: What the model does, for descriptions (``insect detector``).
    role: str
    #: Bundle name: registry prefix ``ml/<bundle>/`` and the original tools' ``algo_name``.
    bundle_name: str
    config_class: type[BundleConfig]
    #: Validation figure (higher is better) that decides promotion.
    metric: str
    #: File-name endings of the annotation objects it trains on, under ``annotations/<name>/``.
    annotation_suffixes: tuple[str, ...]
    #: What those annotation files are, for messages and docs.
    annotations: str
    trainer: StageFunction
    validator: StageFunction
    loader: StageFunction
    #: One line for the configuration reference (``docs/configuration.md``).
    config_summary: str
    cli: StageCli

    @property
    def annotation_prefix(self) -> str:
        return annotation_prefix(self.name)

    @property
    def model_asset(self) -> str:
        """Name of the Dagster asset that retrains it, also the key of its model resource."""
        return f"{self.name}_model"

    @property
    def bundle_variable(self) -> str:
        """Environment variable naming a local bundle to use instead of the registry's current version."""
        return f"STICKYPI_{self.name.upper()}_BUNDLE"

    def is_annotation(self, key: str) -> bool:
        return key.startswith(self.annotation_prefix) and key.lower().endswith(self.annotation_suffixes)

    def train(self, bundle_dir: str | Path, *, device: str = "cpu", progress: bool = False) -> Any:
        """Train the bundle from scratch (random init or the pretrained weights its config asks for)."""
        return self.trainer(bundle_dir, restart=True, device=device, progress=progress)

    def validate(self, bundle_dir: str | Path, out_dir: str | Path, *, device: str = "cpu") -> dict[str, Any]:
        """Validation metrics of a trained bundle, reduced to plain values and the per-class tables (what the
        registry records: ``per_class`` rows and the ``confusion`` matrix, where the validator reports them)."""
        metrics = self.validator(bundle_dir, out_dir, device=device)
        return {k: v for k, v in metrics.items() if isinstance(v, int | float | str | type(None)) or k in TABLE_METRICS}

    def load(self, bundle_dir: str | Path, *, device: str = "cpu") -> tuple[Any, BundleConfig, str]:
        return self.loader(bundle_dir, device=device)


#: Validation metrics that are tables, kept by :meth:`Stage.validate` (promotion reads ``per_class``).
TABLE_METRICS = ("per_class", "confusion")


def _fn(target: str) -> StageFunction:
    module, name = target.split(":")
    return StageFunction(module, name)


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            name="uid", title="UID", role="insect detector", bundle_name=UID_BUNDLE, config_class=UidConfig,
            metric="f1", annotation_suffixes=(".svg",), annotations="UID annotation SVGs (polygons on one image)",
            trainer=_fn("stickypi_assets.ml.uid.train:train"),
            validator=_fn("stickypi_assets.ml.uid.validate:validation_metrics"),
            loader=_fn("stickypi_assets.ml.uid.predict:load_detector"),
            config_summary="Detector, tiled inference, training.",
            cli=StageCli(train="train the bundle's detector (resumes unless --restart-training)", data="*.svg",
                         validate="precision/recall/mask AP on the bundle's validation SVGs",
                         restart="start from iteration 0", max_iter="override the config's MAX_ITER"),
        ),
        Stage(
            name="sim", title="SIM", role="insect matcher", bundle_name=SIM_BUNDLE, config_class=SimConfig,
            metric="auc", annotation_suffixes=(".svg",), annotations="two-frame SIM SVGs (a group = one insect)",
            trainer=_fn("stickypi_assets.ml.sim.train:train"),
            validator=_fn("stickypi_assets.ml.sim.train:validation_metrics"),
            loader=_fn("stickypi_assets.ml.sim.predict:load_matcher"),
            config_summary="Matcher network, three-stage training, tracking.",
            cli=StageCli(train="three-stage training from the bundle's two-frame SVGs", data="*.svg",
                         validate="results.json ({pred, gt}) and ROC AUC on validation pairs",
                         restart="start from round 0 with fresh weights"),
        ),
        Stage(
            name="itc", title="ITC", role="tuboid classifier", bundle_name=ITC_BUNDLE, config_class=ItcConfig,
            metric="macro_recall", annotation_suffixes=("metadata.txt", "tuboid.jpg", "context.jpg", ".db"),
            annotations="tuboid folders with annotation database.db files",
            trainer=_fn("stickypi_assets.ml.itc.train:train"),
            validator=_fn("stickypi_assets.ml.itc.validate:validation_metrics"),
            loader=_fn("stickypi_assets.ml.itc.predict:load_classifier"),
            config_summary="Labels, classifier network, training.",
            cli=StageCli(train="train on the bundle's data/ (tuboids + database.db; resumes by default)", data="",
                         validate="confusion matrix, per-class scores and accuracy on validation tuboids",
                         restart="start from round 0 with fresh weights", max_iter="override the config's N_ROUNDS"),
        ),
    )
}  # fmt: skip


def get_stage(name: str) -> Stage:
    """The table entry of ``name``; ``ValueError`` naming the known stages otherwise."""
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from None
