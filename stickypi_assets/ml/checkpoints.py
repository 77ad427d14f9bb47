"""The one way a weights file is read: tensors and plain values only, never code (no Dagster, torch imported lazily).

``torch.load(..., weights_only=False)`` unpickles arbitrary objects, and unpickling runs whatever a file's
``__reduce__`` names: a ``model_final.pth`` uploaded to the object store would run its payload in the process that
loads the current model. Every checkpoint the platform writes (:func:`stickypi_assets.ml.bundles.atomic_torch_save`
of ``{"format", "model", "config", "progress", "optimizer", ...}``) holds only tensors, dicts, lists, strings and
numbers, which torch's weights-only unpickler accepts, so every loader (UID, SIM, ITC, training resume) goes
through :func:`load_weights_file`, which asks for exactly that and turns a refusal into one clear error.

Model versions are the md5 of the weights file (:func:`stickypi_assets.ml.bundles.weights_version`). A version
read from the store (``CURRENT.json``, a version folder, a registration) is only ever a lowercase 32-hex-digit id:
:func:`check_version` refuses anything else, so a version can never become a path (``../../…``). Where the
expected version is known, :func:`load_weights_file` compares the file's md5 with it before unpickling a byte.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

from stickypi_assets.formats.split import md5_file

__all__ = [
    "CheckpointVersionError",
    "InvalidVersion",
    "UnsafeCheckpointError",
    "check_version",
    "is_version",
    "load_weights_file",
]

#: A model version: the md5 of its weights file as :func:`hashlib.md5(...).hexdigest` writes it.
VERSION_PATTERN = re.compile(r"[0-9a-f]{32}")


class InvalidVersion(ValueError):
    """A model version that is not a lowercase md5 hex id (it would otherwise end up in a path or a key)."""


class UnsafeCheckpointError(ValueError):
    """A weights file that holds more than tensors and plain values (refused before anything in it runs)."""


class CheckpointVersionError(ValueError):
    """A weights file whose md5 is not the version it was fetched as."""


def is_version(value: object) -> bool:
    """Whether ``value`` is a model version id (32 lowercase hex digits)."""
    return isinstance(value, str) and VERSION_PATTERN.fullmatch(value) is not None


def check_version(value: object, where: str = "model version") -> str:
    """``value`` if it is a version id; else :class:`InvalidVersion` saying where it came from.

    Called on every version that comes from the store or a caller, before it is used in a key or a path.
    """
    if not is_version(value):
        raise InvalidVersion(f"{where}: {value!r} is not a model version (the md5 of a weights file: 32 lowercase "
                             "hex digits)")  # fmt: skip
    return value  # type: ignore[return-value]


def load_weights_file(
    path: str | Path, *, map_location: Any = "cpu", expected_version: str | None = None
) -> Any:
    """The contents of a weights file, read with ``torch.load(weights_only=True)``.

    ``expected_version`` (a registry version) is compared with the file's md5 first: a mismatch raises
    :class:`CheckpointVersionError` without unpickling. A file that needs anything beyond tensors and plain
    containers (a pickled object, a class, a function) raises :class:`UnsafeCheckpointError` naming the file;
    torch's weights-only unpickler refuses such globals before calling them, so nothing in the file runs.
    """
    import torch

    path = Path(path)
    if expected_version is not None:
        check_version(expected_version, f"{path}: expected version")
        actual = md5_file(path)
        if actual != expected_version:
            raise CheckpointVersionError(f"{path}: md5 {actual} is not its version {expected_version}: refused "
                                         "(modified or corrupt weights file)")  # fmt: skip
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(f"{path}: refused: not a plain weights file (only tensors and plain values "
                                    f"load; {_first_line(exc)})") from None  # fmt: skip


def _first_line(exc: BaseException) -> str:
    """torch's refusal message is many lines of advice to load with ``weights_only=False``: keep the reason."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported global" in line or "Unsupported operand" in line or "GLOBAL" in line:
            return line
    return lines[0] if lines else type(exc).__name__
