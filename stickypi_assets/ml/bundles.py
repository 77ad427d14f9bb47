"""What every model bundle (UID, SIM, ITC) does the same way: config YAML files, atomic weight files, versions.

A bundle is ``config/config.yaml`` + ``data/`` + ``output/model_final.pth`` (reference section 6.1). One
place for these rules keeps the three stages' bundles interchangeable with each other and with the registry.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from stickypi_assets.formats.split import md5_file

CONFIG_RELPATH = Path("config") / "config.yaml"
WEIGHTS_RELPATH = Path("output") / "model_final.pth"


def read_config_yaml(path: str | Path | None, what: str) -> tuple[dict[str, Any], list[str]]:
    """``(mapping, warnings)`` of a config file; ``None`` or a missing file gives ``{}`` (with a warning)."""
    if path is None:
        return {}, []
    path = Path(path)
    if not path.exists():
        return {}, [f"{path} not found: using defaults"]
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a {what} config must be a YAML mapping")
    return dict(data), []


def coerce_config_value(what: str, name: str, value: Any, default: Any) -> Any:
    """Normalise a YAML value to the type of the config field's default (YAML gives ints where floats are meant,
    and lists, never tuples); list elements take the type of the default's elements."""
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int):
        if isinstance(value, float) and not math.isclose(value, round(value)):
            raise ValueError(f"invalid {what} config: {name.upper()} must be an integer, got {value}")
        return int(value)
    if isinstance(default, list):
        if not isinstance(value, list | tuple):
            raise ValueError(f"invalid {what} config: {name.upper()} must be a list, got {value!r}")
        if default and isinstance(default[0], list):
            return [list(v) for v in value]
        if default and isinstance(default[0], float):
            return [float(v) for v in value]
        if default and isinstance(default[0], int):
            return [int(v) for v in value]
        return list(value)
    return value


def write_config_yaml(data: Mapping[str, Any], path: str | Path, header: str) -> Path:
    """Write every key (defaults included), so the file documents exactly what a run used."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# {header}\n" + yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=None)
    path.write_text(text, encoding="utf-8")
    return path


def atomic_torch_save(payload: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` (no half-written weights)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def weights_version(path: str | Path) -> str:
    """Model version = md5 of the weights file: content-addressed (the original prefixed the file's mtime,
    which changes on copy, and compared versions as strings: reference 8.31)."""
    return md5_file(path)
