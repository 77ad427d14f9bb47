"""``stickypi al``: active learning without Dagster: which images or tuboids of a folder to annotate next, and the
simulated annotator that measures what a strategy saves against random sampling.

Actions:

* ``rank-images``: MC-dropout scores (maskAL certainty, box-only pass for all, masks for the least certain share)
  of every JPEG under ``--target`` with a UID bundle, then a batch under ``--budget`` from ``--mix``; images with an
  ``a_<stem>.svg`` (already annotated) are never asked for. Prints the batch with the reason for each, writes every
  score to ``--out`` (CSV).
* ``rank-tuboids``: the same for tuboid folders with an ITC bundle (margin, entropy, BALD, frame disagreement).
* ``queue``: the annotation queue of the platform's warehouse (the ``annotation_queue`` asset's table): batch,
  rank, item, sampler, reason, status and where the pre-annotation is; ``--update`` first updates it as the asset
  does (statuses from ``annotations/``, the next batch under the ``STICKYPI_AL_*`` settings, pre-annotations).
* ``simulate``: the benchmark's loop (``benchmarks/active_learning.py``) on synthetic ITC or UID deployments.

Exit 0 on success, 1 on a data error or when some input could not be scored (reported, the rest ranked), 2 on
usage errors.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from stickypi_assets.active import DEFAULT_IMAGE_MIX, DEFAULT_TUBOID_MIX
from stickypi_assets.active.report import add_comparison_options
from stickypi_assets.cli.common import (
    DataError,
    UsageError,
    add_command_group,
    add_gpu_flag,
    device,
    existing_folder,
)

SCORE_COLUMNS = {
    "images": ["item", "device", "datetime", "status", "maskal_certainty", "maskal_pass", "n_observations",
               "n_detections", "empty", "error"],
    "tuboids": ["item", "device", "datetime", "pattern", "probability", "margin", "entropy", "bald",
                "frame_disagreement", "vote_disagreement"],
}  # fmt: skip


def _print_batch(batch, what: str) -> None:
    if batch.empty:
        print(f"no {what} to ask for (all annotated, or none could be scored)")
        return
    print(f"annotate next ({len(batch)} {what}):")
    for k, row in enumerate(batch.itertuples(index=False), start=1):
        print(f"{k:3d}. {row.item}  [{row.sampler}] {row.reason}")


def _write_scores(table, kind: str, out: str | None) -> None:
    if out is None:
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    table[[c for c in SCORE_COLUMNS[kind] if c in table.columns]].to_csv(path, index=False)
    print(f"scores of {len(table)} item(s) -> {path}")


def _window(args: argparse.Namespace) -> timedelta | None:
    return timedelta(hours=args.window_hours) if args.window_hours > 0 else None


def _cmd_rank_images(args: argparse.Namespace) -> int:
    from stickypi_assets.active.mixes import parse_mix
    from stickypi_assets.active.scoring import PoolImage, score_images
    from stickypi_assets.active.selection import select_batch
    from stickypi_assets.active.uid_mc import McDropoutMaskRCNN
    from stickypi_assets.formats.names import InvalidImageName, parse_image_name
    from stickypi_assets.ml.uid.predict import decode_jpeg, iter_jpegs, load_detector

    target = existing_folder(args.target)
    images, unnamed, annotated = [], [], set()
    for path in iter_jpegs(target):
        try:
            name = parse_image_name(path.name, ext=None)
        except InvalidImageName as exc:
            unnamed.append((path, str(exc)))
            continue
        if path.with_name(f"a_{path.stem}.svg").exists():
            annotated.add(path.stem)
        images.append(PoolImage(path.stem, name.device, name.datetime, lambda p=path: decode_jpeg(p.read_bytes())))
    if not images:
        raise DataError(f"no Sticky Pi JPEGs (<device>.<datetime>.jpg) under {target}: nothing to rank")
    mix = parse_mix(args.mix, "images", seed=args.seed, labeled=annotated)
    detector, config, version = load_detector(args.bundle_dir, device=device(args))
    sampler = McDropoutMaskRCNN(detector, config, passes=args.passes, dropout=args.dropout, seed=args.seed)
    print(f"scoring {len(images)} image(s) with UID {version}: {args.passes} MC-dropout passes, masks for the "
          f"{args.mask_share:.0%} least certain")  # fmt: skip
    table = score_images(sampler, images, mask_share=args.mask_share)
    ok = table[table["status"] == "ok"]
    batch = select_batch(ok, mix, args.budget, exclude=annotated, window=_window(args))
    _print_batch(batch, "images")
    _write_scores(table, "images", args.out)
    failures = [(p, m) for p, m in unnamed] + list(
        zip(table.loc[table["status"] != "ok", "item"], table.loc[table["status"] != "ok", "error"], strict=True)
    )
    for item, message in failures:
        print(f"not scored: {item}: {message}")
    return 1 if failures else 0


def _cmd_rank_tuboids(args: argparse.Namespace) -> int:
    from stickypi_assets.active.mixes import parse_mix
    from stickypi_assets.active.scoring import tuboid_rows
    from stickypi_assets.active.selection import select_batch
    from stickypi_assets.formats.tuboids import read_tuboids
    from stickypi_assets.ml.itc.predict import load_classifier

    target = existing_folder(args.target)
    tuboids, failures = read_tuboids(target)
    if not tuboids and not failures:
        raise DataError(f"no tuboid folders (*/metadata.txt) under {target}: nothing to rank")
    classifier, _, version = load_classifier(args.bundle_dir, device=device(args))
    print(f"scoring {len(tuboids)} tuboid(s) with ITC {version}: {args.passes} MC-dropout passes")
    table = tuboid_rows(classifier, tuboids, passes=args.passes, dropout=args.dropout, seed=args.seed)
    if len(table):
        batch = select_batch(table, parse_mix(args.mix, "tuboids", seed=args.seed), args.budget, window=_window(args))
        _print_batch(batch, "tuboids")
        _write_scores(table, "tuboids", args.out)
    for path, message in failures:
        print(f"not scored: {path}: {message}")
    return 1 if failures else 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    import logging

    import torch

    from stickypi_assets.active.report import compare, plan, simulation_stage

    torch.set_num_threads(args.threads)
    for noisy in ("stickypi_assets.ml", "stickypi_assets.synth"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    stage, mixes, what = simulation_stage(args.stage, Path(args.out) / "work")
    unknown = sorted(set(args.strategies) - set(mixes))
    if unknown:
        raise UsageError(f"unknown --strategies {unknown} for {args.stage}; choose from {sorted(mixes)}")
    print(f"pool {len(stage.pool)} {what}, held-out deployment {len(stage.test)} {what}", flush=True)
    rounds, initial, batch = plan(args.stage, args.rounds, args.initial, args.batch)
    compare(stage, mixes, strategies=args.strategies, seeds=args.seeds, rounds=rounds, initial=initial, batch=batch,
            out=Path(args.out))  # fmt: skip
    return 0


def _cmd_queue(args: argparse.Namespace) -> int:
    from stickypi_assets.lifecycle.learning_loop import model_states
    from stickypi_assets.lifecycle.registry import ModelRegistry
    from stickypi_assets.pipeline.al_rounds import read_rounds, stalled_warning
    from stickypi_assets.pipeline.annotation_queue import QueuePolicy, read_queue, update_queue
    from stickypi_assets.settings import Settings
    from stickypi_assets.storage.connect import open_object_store, open_warehouse

    settings = Settings.from_env()
    store = open_object_store(settings)
    warehouse = open_warehouse(settings, store)
    if args.update:
        try:
            policy = QueuePolicy.from_settings(settings)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        update = update_queue(store, warehouse, policy,
                              models=model_states(store, ModelRegistry.for_settings(store, settings), warehouse))
        print(f"{update.newly_annotated} item(s) newly annotated, {len(update.new)} queued")
        for kind, why in update.skipped.items():
            print(f"no new {kind} batch: {why}")
        for item, message in update.problems:
            print(f"problem: {item}: {message}")
    queue = read_queue(warehouse)
    if args.kind != "all":
        queue = queue[queue["kind"] == args.kind]
    if args.status != "all":
        queue = queue[queue["status"] == args.status]
    if queue.empty:
        what = " ".join(w for w in (args.status, args.kind) if w != "all")
        print(f"no {what + ' ' if what else ''}items in the annotation queue (materialize annotation_queue, or "
              "run stickypi al queue --update)")  # fmt: skip
        return 0
    shown = queue.sort_values(["batch", "kind", "rank"]).head(args.limit)
    for r in shown.itertuples(index=False):
        print(f"batch {r.batch} #{r.rank:<3d} {r.kind:6s} {r.item}  [{r.sampler}] {r.reason}  ({r.status}) "
              f"-> {r.annotation_key if r.status == 'annotated' else r.pre_annotation_key}")  # fmt: skip
    if len(queue) > len(shown):
        print(f"... {len(queue) - len(shown)} more (--limit)")
    rounds = read_rounds(warehouse)
    for stage in ("uid", "itc"):
        warning = stalled_warning(rounds, stage)
        if warning:
            print(f"warning: {warning}")
    return 0


def _add_sampling_options(parser: argparse.ArgumentParser, default_mix: str, window_hours: float) -> None:
    parser.add_argument("-b", "--bundle-dir", required=True, help="trained bundle whose model scores the items")
    parser.add_argument("-t", "--target", required=True, help="folder searched recursively for the items")
    parser.add_argument("--budget", type=int, default=20, help="how many items to ask for (default 20)")
    parser.add_argument("--mix", default=default_mix, help=f"samplers and shares (default {default_mix})")
    parser.add_argument("--passes", type=int, default=10, help="MC-dropout passes (default 10, maskAL's compromise)")
    parser.add_argument("--dropout", type=float, default=0.25, help="dropout probability (default 0.25, maskAL's)")
    parser.add_argument(
        "--window-hours",
        type=float,
        default=window_hours,
        help=f"at most one item per device in this many hours, 0 = off (default {window_hours:g})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks and random picks")
    parser.add_argument("-o", "--out", help="CSV file for every item's scores (default: not written)")
    add_gpu_flag(parser)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``al`` (``rank-images``, ``rank-tuboids``, ``queue``, ``simulate``) on the main CLI's sub-parsers."""
    al, sub = add_command_group(subparsers, "al", "active learning: what to annotate next, and what it saves")
    images = sub.add_parser("rank-images", help="rank the JPEGs of a folder for UID annotation (maskAL certainty)")
    _add_sampling_options(images, DEFAULT_IMAGE_MIX, 2.0)
    images.add_argument(
        "--mask-share",
        type=float,
        default=0.2,
        help="share of the images scored again with masks after the box-only pass (default 0.2)",
    )
    images.set_defaults(func=_cmd_rank_images)
    tuboids = sub.add_parser("rank-tuboids", help="rank the tuboid folders of a folder for ITC annotation")
    _add_sampling_options(tuboids, DEFAULT_TUBOID_MIX, 0.0)
    tuboids.set_defaults(func=_cmd_rank_tuboids)
    queue = sub.add_parser("queue", help="show the annotation queue (what to annotate next, and why); --update it")
    queue.add_argument("--kind", choices=["image", "tuboid", "all"], default="all", help="which items (default all)")
    queue.add_argument("--status", choices=["queued", "annotated", "all"], default="queued",
                       help="which statuses (default queued: still to annotate)")  # fmt: skip
    queue.add_argument("--limit", type=int, default=50, help="rows shown at most (default 50)")
    queue.add_argument("--update", action="store_true",
                       help="first update it as the annotation_queue asset does (statuses, next batch, "
                            "pre-annotations) from the scores in the warehouse")  # fmt: skip
    queue.set_defaults(func=_cmd_queue)
    sim = sub.add_parser("simulate", help="simulated annotator on synthetic deployments vs random sampling")
    add_comparison_options(sim)
    sim.add_argument("-o", "--out", default="benchmarks/out/active_learning", help="output folder")
    sim.set_defaults(func=_cmd_simulate)
    return al
