"""``stickypi``: the platform's core for people who do not run Dagster.

Sub-commands mirror the original Sticky Pi tools where they exist (``uid check-data``) and expose the
platform's own operations (``images index``, ``warehouse ...``, ``models ...``, ``synth``, ``demo``); each lives
in a module of this package with an ``add_parser`` function. Importing this package, or running a command that
only reads or writes the store, the warehouse or the registry, imports no Dagster: Dagster loads only for the
commands that talk to a Dagster instance (``demo``, ``models promote`` with ``DAGSTER_HOME`` set). Exit status is
0 on success, 1 when some input was bad (reported, nothing else lost), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from stickypi_assets import __version__
from stickypi_assets.cli import demo, images, itc, models, sim, synth, uid, warehouse

#: Every sub-command's module, in the order ``stickypi --help`` lists them.
COMMANDS = (uid, sim, itc, images, warehouse, models, synth, demo)

log = logging.getLogger("stickypi")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stickypi",
        description="Sticky Pi insect-monitoring platform: formats, models and data assets.",
    )
    parser.add_argument("--version", action="version", version=f"stickypi-assets {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    # The platform uses some Dagster features marked beta or preview on purpose (README "Dagster"); users of
    # this command cannot act on those warnings, so the commands that load Dagster do not print them.
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"stickypi: error: {exc}", file=sys.stderr)
        return 2

