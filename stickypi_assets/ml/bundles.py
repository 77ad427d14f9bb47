"""What every model bundle (UID, SIM, ITC) does the same way: config YAML files, atomic weight files, versions.

A bundle is ``config/config.yaml`` + ``data/`` + ``output/model_final.pth`` (reference section 6.1). One
place for these rules keeps the three stages' bundles interchangeable with each other and with the registry.
:class:`BundleConfig` is the base of every stage's configuration: a stage's config class declares its fields
(each with a default and a ``#:`` comment, from which ``docs/configuration.md`` is generated) and its
``validate``; reading, writing and copying are the same for all.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

from stickypi_assets.formats.split import md5_file

CONFIG_RELPATH = Path("config") / "config.yaml"
WEIGHTS_RELPATH = Path("output") / "model_final.pth"
DATA_RELPATH = Path("data")


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


@dataclass
class BundleConfig:
    """Base of the stages' bundle configurations: flat ``UPPER_CASE`` YAML keys, a default for every key.

    Subclasses are dataclasses whose field names are the lower-case keys; they set :attr:`WHAT` (the stage's
    name in messages) and :attr:`DESCRIPTION` (the header line of saved files) and implement
    :meth:`problems`; every instance is validated when it is made, so a bad file fails when it is loaded, not
    mid-training.
    A subclass that reads an older file format overrides :meth:`_read_unknown_key`.
    """

    WHAT: ClassVar[str] = "bundle"
    DESCRIPTION: ClassVar[str] = "model bundle configuration"

    #: Messages about keys that were ignored or converted while loading (not saved).
    warnings: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def problems(self) -> list[str]:
        """Every problem of this configuration (subclasses check their keys); empty when valid."""
        return []

    def validate(self) -> None:
        """Raise ``ValueError`` listing every problem found."""
        problems = self.problems()
        if problems:
            raise ValueError(f"invalid {self.WHAT} config: " + "; ".join(problems))

    @classmethod
    def keys(cls) -> list[str]:
        """The lower-case field names that are configuration keys."""
        return [f.name for f in dataclasses.fields(cls) if f.name != "warnings"]

    def to_dict(self) -> dict[str, Any]:
        """Flat ``{UPPER_KEY: value}`` with plain YAML/JSON types (the on-disk form)."""
        out: dict[str, Any] = {}
        for name in self.keys():
            value = getattr(self, name)
            if isinstance(value, list | tuple):
                value = [list(v) if isinstance(v, list | tuple) else v for v in value]
            out[name.upper()] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, strict: bool = False) -> Self:
        """Build from flat keys (any case); defaults fill the rest.

        Unknown keys are reported in ``warnings`` (``strict=True`` raises instead), so a typo is visible
        without making every old bundle unreadable.
        """
        known = set(cls.keys())
        values: dict[str, Any] = {}
        warnings: list[str] = []
        for key, value in (data or {}).items():
            name = str(key).lower()
            if name in known:
                values[name] = value
            else:
                cls._read_unknown_key(str(key), value, values, warnings)
        if strict and warnings:
            raise ValueError(f"invalid {cls.WHAT} config: " + "; ".join(warnings))
        defaults = cls()
        for name, value in list(values.items()):
            values[name] = coerce_config_value(cls.WHAT, name, value, getattr(defaults, name))
        config = cls(**values)
        config.warnings = warnings
        return config

    @classmethod
    def _read_unknown_key(cls, key: str, value: Any, values: dict[str, Any], warnings: list[str]) -> None:
        """A key that is not a field: reported and ignored (a subclass may map older keys into ``values``)."""
        warnings.append(f"unknown key {key!r} ignored")

    def replace(self, **changes: Any) -> Self:
        """A validated copy with some keys changed (lower-case names), e.g. ``config.replace(max_iter=10)``."""
        data = self.to_dict()
        data.update({k.upper(): v for k, v in changes.items()})
        return type(self).from_dict(data, strict=True)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Self:
        """Read a config YAML; ``None`` gives the defaults, a missing file the defaults plus a warning."""
        data, warnings = read_config_yaml(path, cls.WHAT)
        config = cls.from_dict(data) if data else cls()
        config.warnings.extend(warnings)
        return config

    def save(self, path: str | Path) -> Path:
        """Write every key (defaults included), so the file documents exactly what a run used."""
        return write_config_yaml(
            self.to_dict(), path, f"{self.DESCRIPTION} ({type(self).__module__}.{type(self).__qualname__})"
        )

    @classmethod
    def from_bundle(cls, bundle_dir: str | Path) -> Self:
        """The configuration of a bundle (``<bundle>/config/config.yaml``, defaults where absent)."""
        return cls.load(Path(bundle_dir) / CONFIG_RELPATH)
