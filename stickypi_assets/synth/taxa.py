"""The procedural taxa: what makes each one look different enough for a classifier to learn.

Six taxa common on yellow sticky cards in the original deployments, each with its own size range, body
plan (how :mod:`stickypi_assets.synth.insects` draws it), colours and day/night activity. Taxon strings
follow the ITC annotation convention ``type.order.family.genus.species`` with empty levels left empty
(reference 5.4), so the default ITC label patterns (``^Insecta\\.Diptera\\.Muscidae.*`` ...) match them.
Colours are BGR (OpenCV order).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class TaxonSpec:
    """How one taxon looks and behaves.

    ``length_mm``: body length range (legs and antennae come on top; ``extent`` is the longest dimension
    including them, as a multiple of the body length, used to keep insects inside the card).
    ``nocturnal``: 0 = lands only in daylight, 1 = only at night (relative to the other taxa).
    ``abundance``: relative landing rate.
    """

    key: str
    taxon: str
    plan: str  # fly | gnat | mosquito | leafhopper | beetle
    length_mm: tuple[float, float]
    abundance: float
    nocturnal: float
    body: BGR
    dark: BGR  # legs, stripes, pronotum
    accent: BGR  # eyes, spots, wing veins
    wing: BGR
    wing_opacity: float
    extent: float

    @property
    def levels(self) -> tuple[str, str, str, str, str]:
        parts = self.taxon.split(".")
        return parts[0], parts[1], parts[2], parts[3], parts[4]


def _load_taxa() -> dict[str, TaxonSpec]:
    """The table in ``taxa.toml`` next to this module, in file order (lists become tuples)."""
    text = resources.files(__package__).joinpath("taxa.toml").read_text(encoding="utf-8")
    specs = (
        TaxonSpec(**{name: tuple(value) if isinstance(value, list) else value for name, value in row.items()})
        for row in tomllib.loads(text)["taxon"]
    )
    return {spec.key: spec for spec in specs}


#: The six procedural taxa, keyed by ``TaxonSpec.key``; the data lives in ``taxa.toml``.
TAXA: dict[str, TaxonSpec] = _load_taxa()

DEFAULT_TAXA: tuple[str, ...] = tuple(TAXA)

#: Taxon string given to real cut-outs (``--sprites``): the source annotations only say "insect", so the
#: type is known and every lower level is left empty (the ITC convention for "not set"; ``^Insecta.*``
#: is the catch-all label of the default ITC configuration).
REAL_TAXON = "Insecta...."
REAL_KEY = "real"
