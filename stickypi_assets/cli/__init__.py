"""``stickypi``: the platform's core for people who do not run Dagster.

Sub-commands mirror the original Sticky Pi tools where they exist (``uid check-data``) and expose the
platform's own operations (``images index``, ``warehouse ...``, ``synth``, ``demo``). Exit status is 0 on
success, 1 when some input was bad (reported, nothing else lost), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from tqdm import tqdm

from stickypi_assets import __version__

log = logging.getLogger("stickypi")


# -- uid check-data -------------------------------------------------------------------------------------------


def check_uid_bundle(bundle_dir: Path, *, progress: bool = True) -> list[dict]:
    """Per SVG of ``<bundle>/data``: instance count, md5 split (reference 2.8) and warnings."""
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
    return report


def _cmd_uid_check_data(args: argparse.Namespace) -> int:
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


def _device(args: argparse.Namespace) -> str:
    if not args.gpu:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise ValueError("--gpu given but no CUDA device is available")
    return "cuda"


def _cmd_uid_predict_dir(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.uid.predict import predict_dir

    if args.bundle_dir is None and not args.de_novo:
        raise ValueError("--bundle-dir is required unless --de-novo")
    result = predict_dir(
        args.bundle_dir, args.target, force=args.force, de_novo=args.de_novo, device=_device(args), progress=True
    )
    print(
        f"{len(result.written)} written, {len(result.skipped)} skipped (annotation exists), "
        f"{len(result.failed)} failed under {args.target}"
    )
    for jpg, reason in result.failed:
        print(f"  failed {jpg}: {reason}")
    return 1 if result.failed else 0


def _cmd_uid_train(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.uid.train import train

    result = train(args.bundle_dir, restart=args.restart_training, device=_device(args), max_iter=args.max_iter)
    print(
        f"trained {result.iterations} iterations ({result.n_train_images} train / {result.n_validation_images} "
        f"validation images) in {result.seconds:.0f} s -> {result.weights} (version {result.version})"
    )
    if result.validation_losses:
        print("validation losses: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.validation_losses.items())))
    return 0


def _cmd_uid_validate(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.uid.validate import validate

    result = validate(args.bundle_dir, args.target, device=_device(args), progress=True)
    print(json.dumps(result.metrics, indent=2))
    print(f"results.json, metrics.json and validation SVGs written to {result.out_dir}")
    return 0


def _cmd_sim_predict_dir(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.sim.predict import predict_dir

    day = predict_dir(args.bundle_dir, args.target, force=args.force, torch_device=_device(args), progress=True)
    written = [r for r in day.records if r.directory is not None]
    print(f"{len(day.records)} tuboid(s), {len(written)} written under {Path(args.target) / 'tuboids'}")
    return 0


def _cmd_sim_train(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.sim.train import train

    result = train(args.bundle_dir, restart=args.restart_training, device=_device(args), progress=True)
    print(f"trained {result.rounds} -> {result.weights} (version {result.version})")
    if result.last_validation:
        print("validation: " + json.dumps(result.last_validation, default=str))
    return 0


def _cmd_sim_validate(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.sim.train import validate

    metrics = validate(args.bundle_dir, args.target, device=_device(args), progress=True)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


def _cmd_sim_candidates(args: argparse.Namespace) -> int:
    from stickypi_assets.ml.sim.candidates import make_candidates

    written = make_candidates(args.target, filter_k=args.filter, force=args.force, progress=True)
    print(f"wrote {len(written)} candidate pair SVG(s) under {Path(args.target) / 'candidates'}")
    return 0


# -- images / warehouse ---------------------------------------------------------------------------------------


def _storage():
    from stickypi_assets.orchestration.resources.storage import StickyPiStorage

    return StickyPiStorage()


def _cmd_images_index(args: argparse.Namespace) -> int:
    from stickypi_assets.pipeline.raw_images import index_device_day
    from stickypi_assets.storage.tables import IMAGES
    from stickypi_assets.storage.warehouse import PartitionKey

    storage = _storage()
    day = date.fromisoformat(args.date)
    index = index_device_day(storage.object_store(), args.device, day)
    result = storage.warehouse().write_partition(IMAGES.name, PartitionKey(args.device, day), index.rows)
    print(
        f"{args.device} {day}: {index.n_images} images ({index.count('ok')} ok, {index.count('error')} errors, "
        f"{index.count('duplicate')} duplicates) -> {result.parquet_key}"
    )
    for key, msg in index.errors:
        print(f"  error {key}: {msg}")
    return 1 if index.errors else 0


def _cmd_images_audit(args: argparse.Namespace) -> int:
    from stickypi_assets.pipeline.raw_images import audit_raw_images

    problems = audit_raw_images(_storage().object_store())
    for key, reason in problems:
        print(f"{key}: {reason}")
    print(f"{len(problems)} object(s) under raw_images/ that no device-day partition will index")
    return 1 if problems else 0


def _cmd_warehouse(args: argparse.Namespace) -> int:
    warehouse = _storage().warehouse()
    if args.action == "rebuild":
        for table, n in warehouse.rebuild().items():
            print(f"{table}: {n} rows reloaded from Parquet")
    elif args.action == "publish":
        print(f"published {warehouse.publish()}")
    else:
        df = warehouse.query(args.sql, published=not args.writer)
        print(df.to_string(index=False) if len(df) else "(no rows)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from stickypi_assets.demo.run import run_demo

    return run_demo(
        devices=args.devices, days=args.days, seed=args.seed, models=args.models, uid_iters=args.uid_iters,
        retrain=args.retrain,
    )


# -- parser ---------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stickypi",
        description="Sticky Pi insect-monitoring platform: formats, models and data assets.",
    )
    parser.add_argument("--version", action="version", version=f"stickypi-assets {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    uid = sub.add_parser("uid", help="Universal Insect Detector tools")
    uid_sub = uid.add_subparsers(dest="uid_command", required=True, metavar="ACTION")
    check = uid_sub.add_parser(
        "check-data", help="parse every <bundle>/data/*.svg and report instances, split and warnings"
    )
    check.add_argument("-b", "--bundle-dir", required=True, help="UID bundle directory (with data/*.svg)")
    check.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    check.set_defaults(func=_cmd_uid_check_data)
    pdir = uid_sub.add_parser("predict-dir", help="write <stem>.svg next to every JPEG under --target")
    pdir.add_argument("-b", "--bundle-dir", help="UID bundle with output/model_final.pth")
    pdir.add_argument("-t", "--target", required=True, help="folder searched recursively for *.jpg")
    pdir.add_argument("-f", "--force", action="store_true", help="overwrite <stem>.svg (a_<stem>.svg is never touched)")
    pdir.add_argument("-n", "--de-novo", action="store_true", help="empty SVGs for annotating from scratch (no model)")
    pdir.add_argument("-g", "--gpu", action="store_true", help="run on CUDA")
    pdir.set_defaults(func=_cmd_uid_predict_dir)
    trn = uid_sub.add_parser("train", help="train the bundle's detector (resumes unless --restart-training)")
    trn.add_argument("-b", "--bundle-dir", required=True)
    trn.add_argument("-r", "--restart-training", action="store_true", help="start from iteration 0")
    trn.add_argument("-g", "--gpu", action="store_true", help="train on CUDA")
    trn.add_argument("--max-iter", type=int, help="override the config's MAX_ITER")
    trn.set_defaults(func=_cmd_uid_train)
    val = uid_sub.add_parser("validate", help="precision/recall/mask AP on the bundle's validation SVGs")
    val.add_argument("-b", "--bundle-dir", required=True)
    val.add_argument("-t", "--target", required=True, help="output folder (created)")
    val.add_argument("-g", "--gpu", action="store_true", help="run on CUDA")
    val.set_defaults(func=_cmd_uid_validate)

    sim = sub.add_parser("sim", help="Siamese Insect Matcher tools")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="ACTION")
    spd = sim_sub.add_parser(
        "predict-dir", help="track <target>/*.svg (one device; a_<stem>.svg replaces <stem>.svg) into <target>/tuboids/"
    )
    spd.add_argument("-b", "--bundle-dir", required=True, help="SIM bundle with output/model_final.pth")
    spd.add_argument("-t", "--target", required=True)
    spd.add_argument("-f", "--force", action="store_true", help="replace an existing <target>/tuboids/")
    spd.add_argument("-g", "--gpu", action="store_true")
    spd.set_defaults(func=_cmd_sim_predict_dir)
    stn = sim_sub.add_parser("train", help="three-stage training from the bundle's two-frame SVGs")
    stn.add_argument("-b", "--bundle-dir", required=True)
    stn.add_argument("-r", "--restart-training", action="store_true")
    stn.add_argument("-g", "--gpu", action="store_true")
    stn.set_defaults(func=_cmd_sim_train)
    sva = sim_sub.add_parser("validate", help="results.json ({pred, gt}) and ROC AUC on validation pairs")
    sva.add_argument("-b", "--bundle-dir", required=True)
    sva.add_argument("-t", "--target", required=True, help="output folder (created)")
    sva.add_argument("-g", "--gpu", action="store_true")
    sva.set_defaults(func=_cmd_sim_validate)
    sca = sim_sub.add_parser("make-candidates", help="pre-grouped two-frame SVGs from consecutive annotated frames")
    sca.add_argument("-t", "--target", required=True,
                     help="folder of <device>.<datetime>.svg (a curated a_<stem>.svg replaces <stem>.svg)")
    sca.add_argument("-k", "--filter", type=int, default=1, help="keep every k-th consecutive pair")
    sca.add_argument("-f", "--force", action="store_true", help="replace a non-empty <target>/candidates/")
    sca.set_defaults(func=_cmd_sim_candidates)

    images = sub.add_parser("images", help="raw image ingestion without Dagster")
    images_sub = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    index = images_sub.add_parser("index", help="index one device-day into table 'images'")
    index.add_argument("--device", required=True, help="device id (8 hex digits)")
    index.add_argument("--date", required=True, help="UTC day, YYYY-MM-DD")
    index.set_defaults(func=_cmd_images_index)
    audit = images_sub.add_parser("audit", help="list raw image objects that no partition will index, and why")
    audit.set_defaults(func=_cmd_images_audit)

    wh = sub.add_parser("warehouse", help="DuckDB warehouse maintenance and queries")
    wh_sub = wh.add_subparsers(dest="action", required=True, metavar="ACTION")
    wh_sub.add_parser("rebuild", help="reload every table from its Parquet partitions in the object store")
    wh_sub.add_parser("publish", help="refresh the analysts' read copy")
    sql = wh_sub.add_parser("sql", help="run a read query (on the published copy by default)")
    sql.add_argument("sql", help="SQL text, e.g. \"SELECT device, count(*) FROM images GROUP BY ALL\"")
    sql.add_argument("--writer", action="store_true", help="query the writer's file under its lock instead")
    wh.set_defaults(func=_cmd_warehouse)

    from stickypi_assets.cli.itc import add_parser as add_itc_parser
    from stickypi_assets.cli.models import add_parser as add_models_parser
    from stickypi_assets.cli.synth import add_parser as add_synth_parser

    add_itc_parser(sub)
    add_models_parser(sub)
    add_synth_parser(sub)

    demo = sub.add_parser("demo", help="generate sample data and run the platform on it (no configuration)")
    demo.add_argument("--devices", type=int, default=2)
    demo.add_argument("--days", type=int, default=2)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--no-models", dest="models", action="store_false",
                      help="ingest only: no model training, segmentation or tracking (seconds instead of minutes)")
    demo.add_argument("--uid-iters", type=int, default=None, help="UID training iterations (default 600)")
    demo.add_argument("--retrain", action="store_true", help="train the models again even if trained ones exist")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"stickypi: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
