"""``stickypi``: the platform's core for people who do not run Dagster.

Sub-commands mirror the original Sticky Pi tools where they exist (``uid check-data``) and expose the
platform's own operations (``images index``, ``warehouse ...``, ``models ...``, ``synth``, ``demo``); each lives
in a module of this package with an ``add_parser`` function. Importing this package, or running a command that
only reads or writes the store, the warehouse or the registry, imports no Dagster: Dagster loads only for the
commands that talk to a Dagster instance (``demo``, ``models promote`` with ``DAGSTER_HOME`` set).

Exit status: 0 on success; 1 on a data error (missing or unreadable input, SQL error, no warehouse yet) or when
some inputs were bad (each reported, the rest done); 2 on a usage error (bad option or value, impossible date,
existing output without ``--force``, malformed setting). Errors are one line on stderr (``stickypi: error: …``),
with the traceback only under ``-v``/``--verbose``; :func:`stickypi_assets.cli.common.run_command` maps them.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Sequence

from stickypi_assets import __version__
from stickypi_assets.cli import al, demo, images, itc, models, sim, synth, uid, warehouse
from stickypi_assets.cli.common import PROG, Parser, run_command

#: Every sub-command's module, in the order ``stickypi --help`` lists them.
COMMANDS = (uid, sim, itc, al, images, warehouse, models, synth, demo)

log = logging.getLogger("stickypi")


VERBOSE_HELP = "log INFO messages, and print the traceback of an error"


def _add_verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """``-v`` after the sub-command too (``stickypi warehouse sql ... -v``), without a sub-command's default
    hiding the global flag (``default=SUPPRESS``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
                _add_verbose_everywhere(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Sticky Pi insect-monitoring platform: formats, models and data assets.",
        epilog="Exit status: 0 success, 1 data error (or some inputs reported bad), 2 usage error. "
        "Errors are one line; -v shows their traceback.",
    )
    parser.add_argument("--version", action="version", version=f"stickypi-assets {__version__}",
                        help="print the version and exit")  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="the command to run")
    for command in COMMANDS:
        command.add_parser(sub)
    _add_verbose_everywhere(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2, already printed on one line)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    # The platform uses some Dagster features marked beta or preview on purpose (README "Dagster"); users of
    # this command cannot act on those warnings, so the commands that load Dagster do not print them.
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
    return run_command(args.func, args)
