"""Labels for the tuboids the platform made, from a synthetic deployment's ground truth (the ITC's simulated annotator).

Why: the ITC classifies tiles cut from the **UID's** outlines, which follow an insect's body; ground-truth outlines
also hold the legs and antennae, so a tuboid cut from them (:func:`stickypi_assets.synth.tuboids.write_synth_tuboids`)
is zoomed out about twice as far for a long-legged gnat and shows a thin spider, where the platform shows a dark
blob on the card. An ITC trained on ground-truth tuboids learned those cues and lost whole taxa on the platform's
tuboids: on the demo deployment, Sciaridae were right 46 of 49 times on ground-truth tuboids and 0 of 48 times on
the chain's (median insect length 33 px vs 17 px). In production, annotators label the tuboids the SIM wrote (the
original annotation tool shows exactly those); :func:`label_tuboids` does what they do, with the truth as the
expert, so the ITC trains on what it will classify.

Rule: each frame of a tuboid (a ``metadata.txt`` line: image stem and centroid) votes for the visible true insect
whose outline contains the centroid in that image (or, when none does, the nearest outline within
``max_distance_px``). The tuboid gets the taxon of the insect with most votes when that insect holds at least
``min_share`` of the tuboid's frames; otherwise it stays unlabelled with the reason, as an expert skips a tuboid that
mixes two insects or follows none. Labels go to ``<root>/database.db`` (the annotation tool's schema), so the folder
is ITC training data as it stands.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from stickypi_assets.formats import tuboids as tb
from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.itc_database import TuboidAnnotation, write_annotations
from stickypi_assets.storage.keys import ground_truth_key
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.synth.generator import ITC_USER
from stickypi_assets.synth.sim_pairs import ground_truth_tracks
from stickypi_assets.synth.tuboids import DATABASE_FILENAME


@dataclass
class TuboidLabels:
    """What :func:`label_tuboids` decided: labelled tuboids (with the insect and its share of the frames), the rest."""

    root: Path
    database: Path | None = None
    #: ``(tuboid_id, insect_id, taxon, share of the tuboid's frames on that insect)``
    labelled: list[tuple[str, str, str, float]] = field(default_factory=list)
    #: ``(tuboid folder, reason)``
    unlabelled: list[tuple[str, str]] = field(default_factory=list)

    def taxa(self) -> dict[str, int]:
        """Labelled tuboids per taxon, by taxon name."""
        return dict(sorted(Counter(taxon for _, _, taxon, _ in self.labelled).items()))


@dataclass(frozen=True)
class Followed:
    """Which true insect a track follows: ``insect`` (None: none) holding ``n`` of its ``n_points`` points."""

    insect: str | None
    n: int
    n_points: int
    why: str

    @property
    def share(self) -> float:
        return self.n / self.n_points if self.n_points else 0.0


class TruthOutlines:
    """The visible true outlines of every image of a deployment, to ask which insect a point of an image lies on."""

    def __init__(self, visible: pd.DataFrame) -> None:
        """``visible``: :func:`~stickypi_assets.synth.sim_pairs.ground_truth_tracks` rows (stem, insect, polygon)."""
        self._by_stem: dict[str, tuple[list[str], np.ndarray]] = {}
        for stem, group in visible.groupby("image_stem"):
            outlines = np.empty(len(group), dtype=object)
            outlines[:] = [shapely.Polygon(np.asarray(p.tolist(), dtype=float).reshape(-1, 2)) for p in group.polygon]
            self._by_stem[str(stem)] = (list(group.insect_id), outlines)

    def insect_at(self, stem: str, x: float, y: float, max_distance_px: float) -> str | None:
        """The insect whose outline holds ``(x, y)`` in image ``stem``, else the nearest within ``max_distance_px``."""
        insects, outlines = self._by_stem.get(stem, ([], np.empty(0, dtype=object)))
        if not insects:
            return None
        distances = shapely.distance(outlines, shapely.Point(x, y))  # 0 inside an outline
        best = int(np.argmin(distances))
        return insects[best] if distances[best] <= max_distance_px else None

    def follows(
        self, points: list[tuple[str, float, float]], *, min_share: float = 0.5, max_distance_px: float = 10.0
    ) -> Followed:
        """The insect most of a track's ``(stem, x, y)`` points lie on, if it holds ``min_share`` of them.

        The result's ``insect`` is None when no point lies on an insect or the most frequent one holds too few;
        ``why`` says which. Ties go to the first insect id.
        """
        if not 0 < min_share <= 1:
            raise ValueError(f"min_share must be in (0, 1], got {min_share}")
        n_points = len(points)
        votes = [v for v in (self.insect_at(*p, max_distance_px) for p in points) if v is not None]
        if not votes:
            return Followed(None, 0, n_points, f"none of its {n_points} frames lies on a true insect")
        insect, n = max(sorted(Counter(votes).items()), key=lambda item: item[1])
        if n / n_points < min_share:
            why = f"its most frequent insect {insect} holds {n} of its {n_points} frames (< {min_share:.0%})"
            return Followed(None, n, n_points, why)
        return Followed(insect, n, n_points, f"insect {insect} ({n}/{n_points} frames)")


def label_tuboids(
    root: str | Path, truth: ObjectStore, *, min_share: float = 0.5, max_distance_px: float = 10.0,
    database: bool = True,
) -> TuboidLabels:  # fmt: skip
    """Label every tuboid folder under ``root`` from the ground truth in ``truth`` (see the module docstring).

    ``truth`` holds the deployment the tuboids were made from (``ground_truth/`` of
    :func:`stickypi_assets.synth.generate`). An existing ``<root>/database.db`` is replaced. A folder whose
    ``metadata.txt`` cannot be read is reported as unlabelled, not fatal.
    """
    root = Path(root)
    outlines = TruthOutlines(ground_truth_tracks(truth))
    tracks = pd.read_parquet(io.BytesIO(truth.get_bytes(ground_truth_key("tracks.parquet")))).set_index("insect_id")
    out = TuboidLabels(root=root)
    rows = []
    for directory in tb.iter_tuboid_dirs(root):
        try:
            frames = tb.read_metadata_txt((directory / "metadata.txt").read_text())
        except (OSError, UnicodeDecodeError, FormatError) as exc:
            out.unlabelled.append((directory.name, f"unreadable metadata.txt: {exc}"))
            continue
        points = [(f.stem, f.centroid_x, f.centroid_y) for f in frames]
        followed = outlines.follows(points, min_share=min_share, max_distance_px=max_distance_px)
        if followed.insect is None:
            out.unlabelled.append((directory.name, followed.why))
            continue
        track = tracks.loc[followed.insect]
        taxon = ".".join(str(track[level]) for level in ("type", "order", "family", "genus", "species"))
        out.labelled.append((directory.name, followed.insect, taxon, followed.share))
        rows.append(TuboidAnnotation(
            tuboid_id=directory.name, user=ITC_USER, type=track["type"], order=track["order"], family=track["family"],
            genus=track["genus"], species=track["species"], extra=None, confidence=None,
            notes=f"simulated annotator: {followed.why}",
            datetime=float(pd.Timestamp(track["capture_datetime"]).timestamp()),
        ))  # fmt: skip
    if database:
        path = root / DATABASE_FILENAME
        path.unlink(missing_ok=True)
        write_annotations(path, rows)
        out.database = path
    return out
