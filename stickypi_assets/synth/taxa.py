"""The procedural taxa: what makes each one look different enough for a classifier to learn.

Six taxa common on yellow sticky cards in the original deployments, each with its own size range, body
plan (how :mod:`stickypi_assets.synth.insects` draws it), colours and day/night activity. Taxon strings
follow the ITC annotation convention ``type.order.family.genus.species`` with empty levels left empty
(reference 5.4), so the default ITC label patterns (``^Insecta\\.Diptera\\.Muscidae.*`` ...) match them.
Colours are BGR (OpenCV order).
"""

from __future__ import annotations

from dataclasses import dataclass

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


TAXA: dict[str, TaxonSpec] = {
    t.key: t
    for t in (
        TaxonSpec(
            key="sciaridae",
            taxon="Insecta.Diptera.Sciaridae..",
            plan="gnat",
            length_mm=(2.0, 3.6),
            abundance=0.32,
            nocturnal=0.35,
            body=(38, 36, 40),
            dark=(25, 25, 28),
            accent=(20, 20, 20),
            wing=(95, 95, 100),
            wing_opacity=0.5,
            extent=1.9,
        ),
        TaxonSpec(
            key="muscidae",
            taxon="Insecta.Diptera.Muscidae..",
            plan="fly",
            length_mm=(5.5, 8.5),
            abundance=0.14,
            nocturnal=0.1,
            body=(78, 80, 86),
            dark=(30, 30, 34),
            accent=(45, 50, 125),
            wing=(200, 200, 205),
            wing_opacity=0.38,
            extent=1.6,
        ),
        TaxonSpec(
            key="cicadellidae",
            taxon="Insecta.Hemiptera.Cicadellidae..",
            plan="leafhopper",
            length_mm=(3.5, 6.0),
            abundance=0.16,
            nocturnal=0.2,
            body=(80, 190, 150),
            dark=(55, 130, 95),
            accent=(150, 215, 170),
            wing=(150, 222, 190),
            wing_opacity=0.6,
            extent=1.3,
        ),
        TaxonSpec(
            key="coccinellidae",
            taxon="Insecta.Coleoptera.Coccinellidae..",
            plan="beetle",
            length_mm=(4.5, 7.0),
            abundance=0.08,
            nocturnal=0.05,
            body=(30, 40, 200),
            dark=(20, 20, 22),
            accent=(230, 235, 235),
            wing=(0, 0, 0),
            wing_opacity=0.0,
            extent=1.3,
        ),
        TaxonSpec(
            key="culicidae",
            taxon="Insecta.Diptera.Culicidae..",
            plan="mosquito",
            length_mm=(4.0, 6.5),
            abundance=0.12,
            nocturnal=0.8,
            body=(65, 82, 100),
            dark=(45, 55, 68),
            accent=(30, 35, 40),
            wing=(165, 168, 170),
            wing_opacity=0.32,
            extent=3.0,
        ),
        TaxonSpec(
            key="drosophila_suzukii",
            taxon="Insecta.Diptera.Drosophilidae.Drosophila.Drosophila suzukii",
            plan="fly",
            length_mm=(2.4, 3.4),
            abundance=0.18,
            nocturnal=0.15,
            body=(55, 105, 165),
            dark=(35, 60, 95),
            accent=(35, 35, 185),
            wing=(215, 215, 220),
            wing_opacity=0.28,
            extent=1.7,
        ),
    )
}

DEFAULT_TAXA: tuple[str, ...] = tuple(TAXA)

#: Taxon string given to real cut-outs (``--sprites``): the source annotations only say "insect", so the
#: type is known and every lower level is left empty (the ITC convention for "not set"; ``^Insecta.*``
#: is the catch-all label of the default ITC configuration).
REAL_TAXON = "Insecta...."
REAL_KEY = "real"
