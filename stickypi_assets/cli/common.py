"""What the ``stickypi`` sub-commands share: the ``--gpu`` flag and the platform's storage from the settings.

No Dagster here: the commands that only read or write the store, the warehouse or the registry open them from
:class:`~stickypi_assets.settings.Settings` directly (:mod:`stickypi_assets.storage.connect`).
"""

from __future__ import annotations

import argparse
from typing import Any

from stickypi_assets.ml.devices import gpu_flag_device
from stickypi_assets.settings import Settings
from stickypi_assets.storage.connect import open_object_store, open_warehouse
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.warehouse import Warehouse


def add_gpu_flag(parser: argparse.ArgumentParser, what: str = "run") -> None:
    parser.add_argument("-g", "--gpu", action="store_true", help=f"{what} on CUDA (an error if there is none)")


def add_command_group(
    subparsers: argparse._SubParsersAction, name: str, help: str, *, dest: str | None = None
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """``stickypi <name> ACTION``: the command's parser and its required actions (``args.<name>_command``, or
    ``args.<dest>``, names the action given)."""
    parser = subparsers.add_parser(name, help=help)
    actions = parser.add_subparsers(dest=dest or f"{name}_command", required=True, metavar="ACTION")
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
    parser.set_defaults(func=func)
    return parser


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
