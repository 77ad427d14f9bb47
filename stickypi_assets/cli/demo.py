"""``stickypi demo``: sample data, then the whole platform on it through Dagster (:mod:`stickypi_assets.demo`)."""

from __future__ import annotations

import argparse


def _cmd_demo(args: argparse.Namespace) -> int:
    from stickypi_assets.demo.run import run_demo

    return run_demo(
        devices=args.devices, days=args.days, seed=args.seed, models=args.models, uid_iters=args.uid_iters,
        retrain=args.retrain,
    )  # fmt: skip


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``demo`` on the main CLI's sub-parsers."""
    demo = subparsers.add_parser("demo", help="generate sample data and run the platform on it (no configuration)")
    demo.add_argument("--devices", type=int, default=2, help="devices of the sample deployment (default 2)")
    demo.add_argument("--days", type=int, default=2, help="UTC days per device (default 2)")
    demo.add_argument("--seed", type=int, default=1, help="random seed of the sample (default 1)")
    demo.add_argument("--no-models", dest="models", action="store_false",
                      help="ingest only: no model training, segmentation or tracking (seconds instead of minutes)")
    demo.add_argument("--uid-iters", type=int, default=None, help="UID training iterations (default 600)")
    demo.add_argument("--retrain", action="store_true", help="train the models again even if trained ones exist")
    demo.set_defaults(func=_cmd_demo)
    return demo
