"""``stickypi sim``: the Siamese Insect Matcher on bundles and folders (``make-candidates``, ``train``,
``validate``, ``predict-dir``), as the original ``standalone_sim.py``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stickypi_assets.cli import common


def _cmd_predict_dir(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.sim.candidates import annotation_files
    from stickypi_assets.ml.sim.predict import predict_dir

    target = common.existing_folder(args.target)
    if not annotation_files(target):
        raise common.DataError(f"no annotation SVGs (<device>.<datetime>.svg) in {target}: nothing to do")
    day = predict_dir(args.bundle_dir, args.target, force=args.force, torch_device=common.device(args), progress=True)
    written = [r for r in day.records if r.directory is not None]
    print(f"{len(day.records)} tuboid(s), {len(written)} written under {Path(args.target) / 'tuboids'}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.sim.train import train

    result = train(args.bundle_dir, restart=args.restart_training, device=common.device(args), progress=True)
    print(f"trained {result.rounds} -> {result.weights} (version {result.version})")
    if result.last_validation:
        print("validation: " + json.dumps(result.last_validation, default=str))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.sim.train import validate

    metrics = validate(args.bundle_dir, args.target, device=common.device(args), progress=True)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


def _cmd_candidates(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.sim.candidates import make_candidates

    written = make_candidates(args.target, filter_k=args.filter, force=args.force, progress=True)
    print(f"wrote {len(written)} candidate pair SVG(s) under {Path(args.target) / 'candidates'}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``sim`` (``predict-dir``, ``train``, ``validate``, ``make-candidates``) on the main CLI."""
    sim, sim_sub = common.add_command_group(subparsers, "sim", "Siamese Insect Matcher tools")
    common.add_bundle_action(
        sim_sub, "predict-dir", _cmd_predict_dir,
        "track <target>/*.svg (one device; a_<stem>.svg replaces <stem>.svg) into <target>/tuboids/",
        bundle="SIM bundle with output/model_final.pth", target="folder of one device's <device>.<datetime>.svg",
        force="replace an existing <target>/tuboids/",
    )
    common.add_train_and_validate(sim_sub, "sim", _cmd_train, _cmd_validate)
    sca = sim_sub.add_parser("make-candidates", help="pre-grouped two-frame SVGs from consecutive annotated frames")
    sca.add_argument("-t", "--target", required=True,
                     help="folder of <device>.<datetime>.svg (a curated a_<stem>.svg replaces <stem>.svg)")
    sca.add_argument("-k", "--filter", type=int, default=1, help="keep every k-th consecutive pair")
    sca.add_argument("-f", "--force", action="store_true", help="replace a non-empty <target>/candidates/")
    sca.set_defaults(func=_cmd_candidates)
    return sim
