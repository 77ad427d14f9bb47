"""``stickypi uid``: the Universal Insect Detector on bundles and folders (``check-data``, ``train``, ``validate``,
``predict-dir``), as the original ``standalone_uid.py``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from stickypi_assets.cli import common


def check_uid_bundle(bundle_dir: Path, *, progress: bool = True) -> list[dict]:
    """Per SVG of ``<bundle>/data``: instance count, md5 split (reference 2.8) and warnings.

    A file that cannot be read is one record with ``n_instances`` ``None`` and the reason as its first
    warning (``error: …``), and the check goes on with the next file: the point of the command is to list
    *every* bad file of a bundle in one run. Besides :class:`FormatError` and ``OSError``, any other
    exception is recorded the same way with its type, since a reader bug met by one hostile file must not
    hide the report on the others.
    """
    from stickypi_assets.formats.errors import FormatError
    from stickypi_assets.formats.split import split_for_md5
    from stickypi_assets.formats.uid_svg import read_uid_svg

    data_dir = bundle_dir / "data"
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir} does not exist: a UID bundle holds its annotations in data/*.svg")
    files = sorted(data_dir.glob("*.svg"))
    report = []
    for path in tqdm(files, desc="check-data", unit="svg", disable=not progress, file=sys.stderr):
        try:
            doc = read_uid_svg(path)
            report.append(
                {
                    "file": path.name,
                    "n_instances": len(doc.instances),
                    "split": split_for_md5(doc.md5),
                    "warnings": list(doc.warnings),
                }
            )
        except (FormatError, OSError) as exc:
            report.append({"file": path.name, "n_instances": None, "split": None, "warnings": [f"error: {exc}"]})
        except Exception as exc:  # noqa: BLE001 - one record per file, whatever went wrong
            reason = f"error: unexpected {type(exc).__name__}: {exc}"
            report.append({"file": path.name, "n_instances": None, "split": None, "warnings": [reason]})
    return report


def _cmd_check_data(args: argparse.Namespace) -> int:
    report = check_uid_bundle(Path(args.bundle_dir), progress=not args.json)
    failed = [r for r in report if r["n_instances"] is None]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        width = max((len(r["file"]) for r in report), default=4)
        print(f"{'file':<{width}}  {'instances':>9}  {'split':<10}  warnings")
        for r in report:
            n = "ERROR" if r["n_instances"] is None else r["n_instances"]
            print(f"{r['file']:<{width}}  {n:>9}  {r['split'] or '-':<10}  {len(r['warnings'])}")
            for w in r["warnings"]:
                print(f"    - {w}")
        ok = [r for r in report if r["n_instances"] is not None]
        n_val = sum(r["split"] == "validation" for r in ok)
        print(
            f"{len(report)} files: {sum(r['n_instances'] for r in ok)} instances, "
            f"{len(ok) - n_val} train / {n_val} validation files, {len(failed)} unreadable"
        )
    return 1 if failed or not report else 0


def _cmd_predict_dir(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.uid.predict import iter_jpegs, predict_dir

    if args.bundle_dir is None and not args.de_novo:
        raise common.UsageError("--bundle-dir is required unless --de-novo")
    target = common.existing_folder(args.target)
    if next(iter_jpegs(target), None) is None:
        raise common.DataError(f"no JPEG images (*.jpg, *.jpeg) under {target}: nothing to do")
    result = predict_dir(
        args.bundle_dir, args.target, force=args.force, de_novo=args.de_novo, device=common.device(args), progress=True
    )
    print(
        f"{len(result.written)} written, {len(result.skipped)} skipped (annotation exists), "
        f"{len(result.failed)} failed under {args.target}"
    )
    return common.exit_status(result.failed, "failed")


def _cmd_train(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.uid.train import train

    result = train(args.bundle_dir, restart=args.restart_training, device=common.device(args), max_iter=args.max_iter)
    losses = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.validation_losses.items()))
    return common.report_training(
        result, f"{result.iterations} iterations", (result.n_train_images, result.n_validation_images, "images"),
        f"validation losses: {losses}" if losses else None,
        result.skipped, "unreadable annotation SVG(s) skipped (see output/metrics.jsonl)",
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.uid.validate import validate

    result = validate(args.bundle_dir, args.target, device=common.device(args), progress=True)
    print(json.dumps(result.metrics, indent=2))
    print(f"results.json, metrics.json and validation SVGs written to {result.out_dir}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``uid`` (``check-data``, ``predict-dir``, ``train``, ``validate``) on the main CLI's sub-parsers."""
    uid, uid_sub = common.add_command_group(subparsers, "uid", "Universal Insect Detector tools")
    check = uid_sub.add_parser(
        "check-data", help="parse every <bundle>/data/*.svg and report instances, split and warnings"
    )
    check.add_argument("-b", "--bundle-dir", required=True, help="UID bundle directory (with data/*.svg)")
    check.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    check.set_defaults(func=_cmd_check_data)
    pdir = common.add_bundle_action(
        uid_sub, "predict-dir", _cmd_predict_dir, "write <stem>.svg next to every JPEG under --target",
        bundle="UID bundle with output/model_final.pth", bundle_required=False,
        target="folder searched recursively for *.jpg", force="overwrite <stem>.svg (a_<stem>.svg is never touched)",
    )
    pdir.add_argument("-n", "--de-novo", action="store_true", help="empty SVGs for annotating from scratch (no model)")
    common.add_train_and_validate(uid_sub, "uid", _cmd_train, _cmd_validate)
    return uid
