"""``stickypi itc``: the ITC on folders and bundles, as the original ``standalone_itc.py`` (reference 6.2).

The main ``stickypi`` parser calls :func:`add_parser`; this module never builds a top-level parser itself, so
the command keeps the main CLI's conventions: exit 0 on success, 1 on a data error or when some input was bad
(reported, the rest done), 2 on usage errors; errors propagate to
:func:`stickypi_assets.cli.common.run_command`, which prints them on one line and gives the exit status.

Actions: ``predict-dir`` (every tuboid under ``--target`` → ``<target>/results.csv``), ``train`` (resumes
unless ``--restart-training``) and ``validate`` (the validation tuboids → ``--target`` folder).
"""

from __future__ import annotations

import argparse
import json

from stickypi_assets.cli import common


def _cmd_predict_dir(args: argparse.Namespace) -> int:
    from stickypi_assets.formats.tuboids import iter_tuboid_dirs
    from stickypi_assets.ml.itc.predict import predict_dir

    target = common.existing_folder(args.target)
    if next(iter_tuboid_dirs(target), None) is None:
        raise common.DataError(f"no tuboid folders (*/metadata.txt) under {target}: nothing to do")
    result = predict_dir(args.bundle_dir, args.target, force=args.force, device=common.device(args))
    print(f"classified {result.n_classified} tuboid(s) with model {result.version} -> {result.results}")
    return common.exit_status(result.failures, "unreadable")


def _cmd_train(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.itc.train import train

    result = train(args.bundle_dir, restart=args.restart_training, device=common.device(args), max_iter=args.max_iter)
    validation = "validation: " + json.dumps(result.last_validation) if result.last_validation else None
    return common.report_training(
        result, f"rounds {result.start_round}..{result.rounds}", (result.n_train, result.n_validation, "tuboids"),
        validation, result.report.skipped, "annotated tuboid(s) skipped (see output/dataset.json)",
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.itc.validate import validate

    result = validate(args.bundle_dir, args.target, device=common.device(args))
    print(json.dumps({k: v for k, v in result.metrics.items() if k != "skipped"}, indent=2))
    print(f"{', '.join(result.files)} written to {result.out_dir}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``itc`` (with ``predict-dir``, ``train``, ``validate``) on the main CLI's sub-parsers."""
    itc, sub = common.add_command_group(subparsers, "itc", "Insect Tuboid Classifier tools")
    common.add_bundle_action(
        sub, "predict-dir", _cmd_predict_dir, "classify every tuboid folder under --target into <target>/results.csv",
        bundle="ITC bundle with output/model_final.pth", target="folder searched recursively for */metadata.txt",
        force="replace an existing results.csv",
    )
    common.add_train_and_validate(sub, "itc", _cmd_train, _cmd_validate)
    return itc
