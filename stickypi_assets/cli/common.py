"""What the ``stickypi`` sub-commands share: the parser class, the ``--gpu`` flag, the platform's storage from the
settings, and THE one place where an error becomes an exit status and a one-line message (:func:`run_command`).

Exit status (every sub-command): 0 on success; 1 for a data error (a missing or unreadable file or folder, bad
input data, an SQL error, a warehouse or store that is not there or fails) and when some inputs were bad but the
rest was done (each reported); 2 for a usage error (a bad option or value, an impossible date, an existing output
without ``--force``, a malformed ``STICKYPI_*`` setting). An error is one line on stderr, ``stickypi: error: …``;
``-v``/``--verbose`` (before or after the sub-command) prints its traceback too.

No Dagster here: the commands that only read or write the store, the warehouse or the registry open them from
:class:`~stickypi_assets.settings.Settings` directly (:mod:`stickypi_assets.storage.connect`).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from stickypi_assets.ml.devices import gpu_flag_device
from stickypi_assets.settings import Settings
from stickypi_assets.storage.connect import open_object_store, open_warehouse
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.warehouse import Warehouse

PROG = "stickypi"
#: Exit status of a data error (missing or unreadable input, SQL error, ...) and of a usage error.
EXIT_DATA, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """The command line asks for something impossible (exit 2); the message says what and what to give instead."""


class DataError(Exception):
    """An input is missing, empty or unreadable (exit 1); the message names it."""


class Parser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage errors are one line, ``stickypi: error: <command>: <what>; see ...``
    (exit 2), like every other error of the command. Sub-parsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"{PROG}: error: {where}{message}; see '{self.prog} --help'\n")


def one_line(text: str) -> str:
    """A message on one line: its lines joined by spaces, DuckDB's ``LINE 1: ...`` excerpt and caret dropped."""
    lines = [line.strip() for line in str(text).splitlines()]
    kept = [line for line in lines if line and not line.startswith("LINE ") and set(line) - {"^", " "}]
    return " ".join(kept)


def _loaded(module: str, *names: str) -> tuple[type, ...]:
    """The exception classes ``names`` of ``module`` if it is imported (an exception of a module never imported
    cannot have been raised), so that mapping errors imports nothing."""
    mod = sys.modules.get(module)
    return tuple(getattr(mod, n) for n in names if mod is not None and isinstance(getattr(mod, n, None), type))


def _data_errors() -> tuple[type, ...]:
    """Exceptions that mean "this input is missing, unreadable or bad" (exit 1), including those that are also
    ``ValueError`` (see :func:`exit_code_and_message` for the others)."""
    return (
        DataError,
        json.JSONDecodeError,
        UnicodeError,
        *_loaded("stickypi_assets.formats.errors", "FormatError"),
        *_loaded("stickypi_assets.storage.object_store", "ObjectStoreError"),  # InvalidKey too
        *_loaded("stickypi_assets.storage.warehouse", "WarehouseError"),
        *_loaded("duckdb", "Error"),
        *_loaded("pyarrow.lib", "ArrowException"),
        *_loaded("stickypi_assets.ml.checkpoints", "UnsafeCheckpointError", "CheckpointVersionError"),
        *_loaded("stickypi_assets.pipeline.raw_images", "ImageDecodeError"),
    )


#: Modules whose ``ValueError`` is about what the user typed: the command line, a ``STICKYPI_*`` setting, the
#: ``synth`` options (its config checks them), ``--gpu``.
USAGE_MODULES = ("stickypi_assets.cli", "stickypi_assets.settings", "stickypi_assets.synth.config",
                 "stickypi_assets.ml.devices", "argparse")  # fmt: skip


def _raised_in(exc: BaseException) -> str:
    """The module of the Python frame that raised ``exc`` (``""`` if unknown)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""


def exit_code_and_message(exc: BaseException) -> tuple[int, str]:
    """THE mapping of an exception raised by a command to ``(exit status, one-line message)``.

    Usage errors (2): :class:`UsageError`, ``FileExistsError`` (an output exists and ``--force`` was not given),
    a ``ValueError`` raised by the code that checks what the user typed (:data:`USAGE_MODULES`: a bad option
    value, a malformed setting). Data errors (1): :class:`DataError`, ``OSError`` (a missing or unreadable file or
    folder), the project's format, store, warehouse and checkpoint errors, DuckDB's, and any other
    ``ValueError`` (raised while reading a bundle, a config file or annotations). Anything else is a bug or an
    environment failure: exit 1, with its type and a pointer to ``-v``.
    """
    message = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(exc, UsageError | FileExistsError):
        return EXIT_USAGE, message
    if isinstance(exc, _data_errors() + (OSError,)):
        return EXIT_DATA, message
    if isinstance(exc, ValueError):
        module = _raised_in(exc)
        usage = any(module == m or module.startswith(f"{m}.") for m in USAGE_MODULES)
        return (EXIT_USAGE if usage else EXIT_DATA), message
    return EXIT_DATA, f"unexpected {type(exc).__name__}: {message} (run with -v for the traceback)"


def run_command(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a sub-command's handler: its exit status, or that of the error it raised (printed on one line on
    stderr, with the traceback before it when ``args.verbose``)."""
    try:
        return int(func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error ends as one line and a status
        code, message = exit_code_and_message(exc)
        sys.stdout.flush()
        if getattr(args, "verbose", False):
            traceback.print_exception(exc, file=sys.stderr)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return code


def existing_folder(path: str | Path, what: str = "folder") -> Path:
    """``path`` if it is a folder; ``FileNotFoundError`` "no such folder: …" (exit 1) otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no such {what}: {path}" if not path.exists() else f"not a folder: {path}")
    return path


def add_gpu_flag(parser: argparse.ArgumentParser, what: str = "run") -> None:
    parser.add_argument("-g", "--gpu", action="store_true", help=f"{what} on CUDA (an error if there is none)")


def add_command_group(
    subparsers: argparse._SubParsersAction, name: str, help: str, *, dest: str | None = None
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """``stickypi <name> ACTION``: the command's parser and its required actions (``args.<name>_command``, or
    ``args.<dest>``, names the action given)."""
    parser = subparsers.add_parser(name, help=help)
    actions = parser.add_subparsers(
        dest=dest or f"{name}_command",
        required=True,
        metavar="ACTION",
        help=f"what to do (`stickypi {name} ACTION --help` for its options)",
    )
    return parser, actions


def add_bundle_action(
    sub: argparse._SubParsersAction, name: str, func, help: str, *, bundle: str, bundle_required: bool = True,
    target: str | None = None, force: str | None = None, restart: str | None = None, max_iter: str | None = None,
) -> argparse.ArgumentParser:  # fmt: skip
    """A stage action on a bundle (``train``, ``validate``, ``predict-dir``) with the options the three stages
    share, named and spelled the same everywhere: ``-b/--bundle-dir``, ``-t/--target``, ``-f/--force``,
    ``-r/--restart-training``, ``--max-iter``, ``-g/--gpu``. Each option is added when its help text is given."""
    parser = sub.add_parser(name, help=help)
    parser.add_argument("-b", "--bundle-dir", required=bundle_required, help=bundle)
    if target:
        parser.add_argument("-t", "--target", required=True, help=target)
    if force:
        parser.add_argument("-f", "--force", action="store_true", help=force)
    if restart:
        parser.add_argument("-r", "--restart-training", action="store_true", help=restart)
    if max_iter:
        parser.add_argument("--max-iter", type=int, help=max_iter)
    add_gpu_flag(parser, "train" if name == "train" else "run")
    parser.set_defaults(func=_in_existing_bundle(func))
    return parser


def add_train_and_validate(sub: argparse._SubParsersAction, stage: str, train, validate) -> None:
    """A stage's ``train`` (on ``<bundle>/config/config.yaml`` and ``data/<data>``; ``-r`` and ``--max-iter``
    where the stage has them) and ``validate`` (a trained bundle into the ``--target`` folder) actions, spelled the
    same for every stage, with the help texts of its entry in the stage table (``stage``: ``uid``, ``sim``, ``itc``)."""
    from stickypi_assets.ml.stages import get_stage

    entry = get_stage(stage)
    helps = entry.cli
    bundle = f"{entry.title} bundle (config/config.yaml, data/{helps.data})"
    add_bundle_action(sub, "train", train, helps.train, bundle=bundle, restart=helps.restart, max_iter=helps.max_iter)
    trained = f"trained {entry.title} bundle"
    add_bundle_action(sub, "validate", validate, helps.validate, bundle=trained, target="output folder (created)")


def _in_existing_bundle(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func`` once ``--bundle-dir`` (when given) is known to be a folder: "no such bundle folder: …" (exit 1)
    rather than whatever a stage makes of a bundle that is not there."""

    @functools.wraps(func)
    def checked(args: argparse.Namespace) -> int:
        if args.bundle_dir is not None:
            existing_folder(args.bundle_dir, "bundle folder")
        return func(args)

    return checked


def device(args: argparse.Namespace) -> str:
    """The torch device of a command's ``--gpu`` flag."""
    return gpu_flag_device(getattr(args, "gpu", False))


def report_training(
    result: Any, done: str, counts: tuple[int, int, str], validation: str | None, skipped: list[tuple[object, str]],
    what_skipped: str,
) -> int:  # fmt: skip
    """What a stage's ``train`` prints: what was trained (``done``) on how many ``(train, validation, unit)``, in
    how long and into which weights (``result.seconds``, ``.weights``, ``.version``), its last validation (when
    there was one) and each input left out as ``  <item>: <reason>`` under ``<count> <what_skipped>:``. Exit
    status 0: a skipped input is reported, not a failure."""
    n_train, n_validation, unit = counts
    print(
        f"trained {done} ({n_train} train / {n_validation} validation {unit}) in {result.seconds:.0f} s "
        f"-> {result.weights} (version {result.version})"
    )
    if validation:
        print(validation)
    if skipped:
        print(f"{len(skipped)} {what_skipped}:")
        for item, reason in skipped:
            print(f"  {item}: {reason}")
    return 0


def exit_status(failures: list[tuple[object, str]], what: str) -> int:
    """Print each ``(item, reason)`` that failed, as ``  <what> <item>: <reason>``; exit status 1 if any, else 0
    (the commands' rule: bad input is reported and the rest is done)."""
    for item, reason in failures:
        print(f"  {what} {item}: {reason}")
    return 1 if failures else 0


def object_store() -> ObjectStore:
    return open_object_store(Settings.from_env())


def warehouse() -> Warehouse:
    return open_warehouse(Settings.from_env())


def registry():
    """The model registry in the platform's object store (versions fetched into ``<data root>/ml-cache``)."""
    from stickypi_assets.lifecycle.registry import ModelRegistry

    settings = Settings.from_env()
    return ModelRegistry.for_settings(open_object_store(settings), settings)
