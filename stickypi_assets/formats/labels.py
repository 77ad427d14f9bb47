"""ITC label configuration: ordered ``[regex, label_or_null]`` entries mapping taxa to class ids (ref. 5.4).

A taxon is ``type.order.family.genus.species`` (empty levels are empty strings). Matching is **first match
wins in config list order** with ``re.match`` (anchored at the start), so specific patterns (a species, a
family) must be listed before generic ones (an order, ``^Insecta.*``). ``null`` labels are numbered in list
order from ``max(explicit labels) + 1`` (the original's comment says "alphabetically"; its code, which we
follow, uses list order). The class ids must be exactly ``0 .. n_classes - 1`` because they index the
classifier's outputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from stickypi_assets.formats.errors import FormatError

TAXONOMY_LEVELS = ("type", "order", "family", "genus", "species")


def deepest_level(taxonomy: Mapping[str, object]) -> str | None:
    """The most specific level a taxonomy names (``Sciaridae``, ``Drosophila suzukii``); None when none is named.

    The one rule for a taxon's short name: validation reports, the demo's report and the drift signal use it, so
    their names meet. Levels that are not non-empty text (None, NaN read from a table) are not named.
    """
    named = [v for v in (taxonomy.get(level) for level in TAXONOMY_LEVELS) if isinstance(v, str) and v]
    return named[-1] if named else None

LabelEntry = tuple[str, int | None]

#: The Diptera classes both reference lists have, in the same order (a species before its family) and with the same
#: numbers (4-9): one tuple, spliced into each list.
_REFERENCE_DIPTERA: tuple[LabelEntry, ...] = (
    (r"^Insecta\.Diptera\.Drosophilidae\.Drosophila\.Drosophila suzukii.*", None),
    (r"^Insecta\.Diptera\.Drosophilidae.*", None),
    (r"^Insecta\.Diptera\.Psychodidae.*", None),
    (r"^Insecta\.Diptera\.Culicidae.*", None),
    (r"^Insecta\.Diptera\.Muscidae.*", None),
    (r"^Insecta\.Diptera\.Sciaridae.*", None),
)

#: The original ITC test bundle's 15 classes (section 5.4). Regexes reconstructed from the documented class
#: names; the order puts specific patterns before generic ones and numbers the nulls 3..14 as documented.
REFERENCE_TEST_LABELS: tuple[LabelEntry, ...] = (
    (r"^Background.*", 0),
    (r"^Ambiguous.*", 1),
    (r"^Insecta\.Hemiptera\.Cicadellidae\.Edwardsiana.*", None),  # 3
    *_REFERENCE_DIPTERA,  # 4-9
    (r"^Insecta\.Coleoptera\.Curculionidae.*", None),  # 10
    (r"^Insecta\.Coleoptera\.Coccinellidae.*", None),  # 11
    (r"^Insecta\.Coleoptera.*", None),  # 12
    (r"^Insecta\.Hymenoptera\.Figitidae.*", None),  # 13
    (r"^Insecta\.Hymenoptera.*", None),  # 14
    (r"^Insecta.*", 2),  # generic insect: last, so every more specific pattern is tried first
)

#: The original default config's 18 classes (``insect_tuboid_classifier/default_config/config.yaml``).
REFERENCE_DEFAULT_LABELS: tuple[LabelEntry, ...] = (
    (r"^Background.*", 0),
    (r"^Insecta\.Hemiptera\.Cicadellidae\.Edwardsiana.*", None),  # 2
    (r"^Insecta\.Hemiptera\.Cicadellidae.*", None),  # 3
    *_REFERENCE_DIPTERA,  # 4-9
    (r"^Insecta\.Diptera\.Syrphidae.*", None),  # 10
    (r"^Insecta\.Coleoptera\.Curculionidae.*", None),  # 11
    (r"^Insecta\.Coleoptera\.Coccinellidae.*", None),  # 12
    (r"^Insecta\.Coleoptera\.Elateridae.*", None),  # 13
    (r"^Insecta\.Coleoptera.*", None),  # 14
    (r"^Insecta\.Hymenoptera\.Figitidae.*", None),  # 15
    (r"^Insecta\.Hymenoptera\.Halictidae.*", None),  # 16
    (r"^Insecta\.Lepidoptera.*", None),  # 17
    (r"^Insecta.*", 1),
)


class LabelError(FormatError):
    """An invalid label configuration, an unknown label, or a taxon no pattern matches."""


@dataclass(frozen=True)
class LabelPattern:
    label: int
    pattern: str


class LabelMap:
    """Resolved label configuration: taxon → class id, class id → pattern and taxonomy."""

    def __init__(self, entries: Sequence[LabelPattern]):
        """Use :meth:`from_config`; this takes already-numbered patterns in matching (config list) order."""
        self._ordered = list(entries)
        self._compiled = [(re.compile(e.pattern), e.label) for e in self._ordered]
        self._by_label = {e.label: e for e in self._ordered}
        self.patterns: list[LabelPattern] = sorted(self._ordered, key=lambda e: e.label)
        self.n_classes: int = len(self.patterns)

    @classmethod
    def from_config(cls, entries: Sequence[LabelEntry] | list[list]) -> LabelMap:
        """Build from ``LABELS`` entries ``[regex, label or None]``, numbering the ``None`` labels.

        Errors (:class:`LabelError`): empty list, malformed entry, invalid regex, non-integer or negative
        label, duplicate label, or labels that are not exactly ``0 .. n - 1``.
        """
        if isinstance(entries, str | bytes) or not isinstance(entries, Sequence) or len(entries) == 0:
            raise LabelError("LABELS must be a non-empty list of [regex, label or null] entries")
        parsed: list[tuple[str, int | None]] = []
        for i, entry in enumerate(entries):
            if isinstance(entry, str | bytes) or not isinstance(entry, Sequence) or len(entry) != 2:
                raise LabelError(f"LABELS entry {i} {entry!r}: expected [regex, label or null]")
            pattern, label = entry
            if not isinstance(pattern, str):
                raise LabelError(f"LABELS entry {i}: pattern {pattern!r} must be a string")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise LabelError(f"LABELS entry {i}: invalid regex {pattern!r}: {exc}") from None
            if label is not None and (isinstance(label, bool) or not isinstance(label, int) or label < 0):
                raise LabelError(
                    f"LABELS entry {i} ({pattern!r}): label {label!r} must be an integer >= 0 or null"
                )
            parsed.append((pattern, label))

        explicit = [label for _, label in parsed if label is not None]
        next_label = max(explicit) + 1 if explicit else 0
        numbered: list[LabelPattern] = []
        seen: dict[int, str] = {}
        for pattern, label in parsed:
            if label is None:
                label = next_label
                next_label += 1
            if label in seen:
                raise LabelError(f"duplicate label {label}: used by {seen[label]!r} and {pattern!r}")
            seen[label] = pattern
            numbered.append(LabelPattern(label=label, pattern=pattern))
        if sorted(seen) != list(range(len(numbered))):
            raise LabelError(
                f"labels must be exactly 0..{len(numbered) - 1} (they index the classifier outputs), "
                f"got {sorted(seen)}"
            )
        return cls(numbered)

    @classmethod
    def from_yaml(cls, path: str | Path) -> LabelMap:
        """Read the ``LABELS`` key of a bundle ``config.yaml``."""
        path = Path(path)
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise LabelError(f"{path}: invalid YAML: {exc}") from None
        if not isinstance(config, dict) or "LABELS" not in config:
            raise LabelError(f"{path}: no LABELS key (expected an ITC bundle config.yaml)")
        try:
            return cls.from_config(config["LABELS"])
        except LabelError as exc:
            raise LabelError(f"{path}: {exc}") from None

    def to_config(self) -> list[list]:
        """Explicitly numbered ``LABELS`` entries in matching order (what a bundle config should store)."""
        return [[e.pattern, e.label] for e in self._ordered]

    def label_for(self, taxon: str) -> int:
        """Class id of the first pattern (config list order) that ``re.match``-es ``taxon``."""
        for regex, label in self._compiled:
            if regex.match(taxon):
                return label
        raise LabelError(f"no label pattern matches taxon {taxon!r}")

    def pattern_for(self, label: int) -> str:
        try:
            return self._by_label[label].pattern
        except KeyError:
            raise LabelError(f"unknown label {label!r} (labels are 0..{self.n_classes - 1})") from None

    def taxonomy_for(self, label: int) -> dict[str, str | None]:
        """Taxonomy levels named by the label's pattern, as the original reports predictions.

        The pattern is split on the literal two characters ``\\.``; every character that is not an ASCII
        letter or a space is removed from each piece (so ``^Insecta`` → ``Insecta``, ``.*`` → ``''``); pieces
        are zipped with ``type, order, family, genus, species`` and missing levels are None.
        """
        pattern = self.pattern_for(label)
        pieces = [re.sub(r"[^A-Za-z ]", "", piece) for piece in pattern.split(r"\.")]
        if len(pieces) > len(TAXONOMY_LEVELS):
            raise LabelError(
                f"label {label} pattern {pattern!r} has {len(pieces)} levels; at most {len(TAXONOMY_LEVELS)}"
            )
        taxonomy: dict[str, str | None] = dict.fromkeys(TAXONOMY_LEVELS)
        taxonomy.update(zip(TAXONOMY_LEVELS, pieces, strict=False))
        return taxonomy

    def __repr__(self) -> str:
        return f"LabelMap(n_classes={self.n_classes})"
