"""How close the platform's tables are to a synthetic deployment's ground truth (the demo's accuracy report).

* **Detection** (UID): per image, the rows of table ``instances`` against the ground-truth SVG's outlines,
  one-to-one (the UID validation matcher) at polygon IoU >= 0.33 (the original validation's threshold:
  outlines of thin legs are hard, and a briefly trained model misses them) and at IoU >= 0.5: precision,
  recall, and the error of the number of insects per image.
* **Tracking** (SIM): rows of table ``tuboid_frames`` against the true identities
  (:func:`stickypi_assets.synth.sim_pairs.ground_truth_tracks`) with IDF1/MOTA
  (:mod:`stickypi_assets.ml.sim.evaluate`); detections come from the UID, so this is the whole chain.
* **Capture time**: for each true insect matched to a tuboid (the tuboid holding most of its boxes), the
  tuboid's first frame minus the insect's first visible frame.
* **Taxonomy** (ITC): for every capture (row of view ``captures``) that follows one true insect (most of its
  frames' centroids on that insect's outline, :func:`capture_taxonomy`), whether it has the label the insect's
  true taxon maps to under the model's label list; overall, per taxon (recall and precision, so that a taxon the
  model never predicts cannot hide behind the average) and as a confusion matrix (:func:`taxonomy_scores`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely import wkt

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.labels import LabelMap
from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.itc.validate import confusion_matrix, per_class_metrics, short_name
from stickypi_assets.ml.sim.evaluate import tracking_scores
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.validate import match_records, precision_recall
from stickypi_assets.storage.keys import ground_truth_key
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.warehouse import Warehouse
from stickypi_assets.synth.sim_pairs import ground_truth_tracks


@dataclass
class ChainScores:
    detection: dict[str, Any] = field(default_factory=dict)
    tracking: dict[str, float] = field(default_factory=dict)
    capture_time: dict[str, float] = field(default_factory=dict)
    taxonomy: dict[str, float] = field(default_factory=dict)
    per_taxon: pd.DataFrame | None = None
    confusion: pd.DataFrame | None = None

    def lines(self) -> list[str]:
        d, t, c, x = self.detection, self.tracking, self.capture_time, self.taxonomy
        out = []
        if d:
            out.append(
                f"detection (UID): precision {d['precision']:.3f}, recall {d['recall']:.3f} at IoU >= 0.33 "
                f"({d['precision_iou50']:.3f} / {d['recall_iou50']:.3f} at IoU >= 0.5) over "
                f"{d['n_gt']} true insect instances in {d['n_images']} images; count per image: mean "
                f"{d['mean_count_true']:.1f} true vs {d['mean_count_found']:.1f} found, mean |error| "
                f"{d['mean_abs_count_error']:.2f} ({d['relative_count_error']:+.1%} overall)"
            )
        if t:
            out.append(
                f"tracking (UID + SIM, outline IoU >= 0.5): IDF1 {t['idf1']:.3f}, MOTA {t['mota']:.3f}, "
                f"{int(t['num_switches'])} identity switches, "
                f"{int(t['mostly_tracked'])}/{int(t['num_unique_objects'])} insects mostly tracked; "
                f"insects counted: {int(t['n_tuboids'])} tuboids for "
                f"{int(t['num_unique_objects'])} true insects ({t['n_tuboids'] / t['num_unique_objects'] - 1:+.1%})"
            )
        if c:
            out.append(
                f"capture time: median error {c['median_minutes']:.0f} min, within one frame (20 min) for "
                f"{c['share_within_one_frame']:.0%} of {int(c['n_insects'])} insects"
            )
        if x:
            out.append(
                f"taxonomy (UID + SIM + ITC): {x['accuracy']:.1%} of {int(x['n_scored'])} captures that follow one "
                f"true insect get the label of its taxon ({int(x['n_unclassified'])} unclassified; "
                f"{int(x.get('n_captures_without_insect', 0))} captures follow no single insect); macro recall "
                f"{x['macro_recall']:.3f} over {int(x['n_taxa'])} taxa"
            )
        if self.per_taxon is not None:
            out.append("per taxon (recall: right / captures of the taxon; precision: right / those given its label):\n"
                       + _indent(self.per_taxon.to_string(index=False, float_format=lambda v: f"{v:.2f}")))
        if self.confusion is not None:
            out.append("confusion (rows: true taxon, columns: label given):\n" + _indent(self.confusion.to_string()))
        return out


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


UNCLASSIFIED = "unclassified"


def taxonomy_scores(
    true_taxa: list[str], labels: list[int | None], label_map: LabelMap
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Overall accuracy, per-taxon recall/precision and the confusion matrix of scored items (captures).

    ``true_taxa[i]`` is item i's true dotted taxon, ``labels[i]`` the class id it got (None:
    unclassified). An item is right when its label is the one its true taxon maps to. Rows of the per-taxon
    table and of the confusion matrix are the labels the true taxa map to (named by the deepest level the
    label's pattern names, as ``captures.taxon`` does), so the matrix's diagonal is what is right; its columns
    are the labels given plus ``unclassified``. Macro recall averages the recall of the taxa present, so one
    taxon never found weighs as much as any other.
    """
    if len(true_taxa) != len(labels):
        raise ValueError(f"{len(true_taxa)} true taxa for {len(labels)} labels")
    n_classes = label_map.n_classes
    unclassified = n_classes  # one more column: items without a label
    expected = [label_map.label_for(t) for t in true_taxa]
    given = [unclassified if lab is None or pd.isna(lab) else int(lab) for lab in labels]
    cm = confusion_matrix(expected, given, n_classes + 1)  # the ITC validation's counting, rows = true label
    names = [short_name(label_map, k) for k in range(n_classes)] + [UNCLASSIFIED]
    present = [r for r in per_class_metrics(cm)[:n_classes] if r["support"]]
    per_taxon = pd.DataFrame(
        [{"taxon": names[r["label"]], "true": r["support"], "right": r["tp"], "recall": r["recall"],
          "given": r["predicted"], "precision": float("nan") if r["precision"] is None else r["precision"]}
         for r in present],
        columns=["taxon", "true", "right", "recall", "given", "precision"],
    )  # fmt: skip
    rows = [r["label"] for r in present]
    cols = [k for k in range(n_classes + 1) if cm[:, k].sum()]
    confusion = pd.DataFrame(cm[np.ix_(rows, cols)], index=pd.Index([names[k] for k in rows], name="true"),
                             columns=pd.Index([names[k] for k in cols], name="given"))  # fmt: skip
    n = len(expected)
    summary = {
        "n_scored": float(n),
        "accuracy": float(np.trace(cm)) / n if n else 0.0,
        "n_unclassified": float(cm[:, unclassified].sum()),
        "macro_recall": float(per_taxon.recall.mean()) if n else 0.0,
        "n_taxa": float(len(per_taxon)),
    }
    return summary, per_taxon, confusion


def _truth_images(store: ObjectStore) -> pd.DataFrame:
    images = pd.read_parquet(io.BytesIO(store.get_bytes(ground_truth_key("images.parquet"))))
    return images[images.status == "ok"]


def detection_scores(store: ObjectStore, instances: pd.DataFrame, images: pd.DataFrame) -> dict[str, Any]:
    """``instances``: rows of table ``instances``; ``images``: the segmented images (``image_key``)."""
    truth = _truth_images(store).set_index("key")
    config, strict = UidConfig(match_iou=0.33), UidConfig(match_iou=0.5)
    records, strict_records, counts = [], [], []
    by_image = dict(tuple(instances.groupby("image_key"))) if len(instances) else {}
    for key in sorted(set(images.image_key) & set(truth.index)):
        gt = read_uid_svg(store.get_bytes(truth.loc[key, "svg_key"])).instances
        rows = by_image.get(key)
        pred = [] if rows is None else [
            Instance(polygon=np.asarray(wkt.loads(p).exterior.coords, dtype=np.int32)[:-1]) for p in rows.polygon_wkt
        ]  # fmt: skip
        records += match_records(gt, pred, key, config)
        strict_records += match_records(gt, pred, key, strict)
        counts.append((len(gt), len(pred)))
    pr = precision_recall(records)
    pr50 = precision_recall(strict_records)
    true_n = np.array([c[0] for c in counts], dtype=float)
    found_n = np.array([c[1] for c in counts], dtype=float)
    return pr | {
        "n_images": len(counts),
        "mean_count_true": float(true_n.mean()) if len(counts) else 0.0,
        "mean_count_found": float(found_n.mean()) if len(counts) else 0.0,
        "mean_abs_count_error": float(np.abs(found_n - true_n).mean()) if len(counts) else 0.0,
        "relative_count_error": float((found_n.sum() - true_n.sum()) / true_n.sum()) if true_n.sum() else 0.0,
        "precision": pr["precision"] or 0.0,
        "recall": pr["recall"] or 0.0,
        "precision_iou50": pr50["precision"] or 0.0,
        "recall_iou50": pr50["recall"] or 0.0,
    }


def score_chain(store: ObjectStore, warehouse: Warehouse, label_map: LabelMap | None = None) -> ChainScores:
    """Compare the warehouse's ``instances``, ``tuboid_frames`` and ``captures`` with the store's ground truth.

    ``label_map``: the ITC model's labels (taxonomy is scored only when given).
    """
    out = ChainScores()
    segmented = warehouse.query("SELECT image_key FROM segmented_images WHERE status = 'ok'")
    if len(segmented):
        instances = warehouse.query("SELECT image_key, polygon_wkt FROM instances")
        out.detection = detection_scores(store, instances, segmented)
    frames = warehouse.query(
        "SELECT tuboid_id, instance_id, datetime, bbox_x, bbox_y, bbox_w, bbox_h, polygon_wkt FROM tuboid_frames"
    )
    if not len(frames):
        return out
    devices = sorted({i.split(".")[0] for i in frames.instance_id})
    truth = ground_truth_tracks(store, devices)
    frames["frame"] = frames.instance_id.str.rsplit(".", n=1).str[0]
    frames["polygon"] = [np.asarray(wkt.loads(w).exterior.coords)[:-1] for w in frames.polygon_wkt]
    # Frames of the sequence: every image the UID segmented (a frame where nothing was tracked still counts).
    truth_stems = set(truth.image_stem)
    keys = sorted(
        {k.rsplit("/", 1)[-1].removesuffix(".jpg") for k in segmented.image_key} & truth_stems | set(frames.frame)
    )
    scores = tracking_scores(truth, frames, keys, truth_frame_column="image_stem", predicted_id="tuboid_id",
                             geometry="polygon")  # fmt: skip
    out.tracking = scores.as_dict() | {"n_tuboids": float(frames.tuboid_id.nunique())}
    # Capture time: truth insect → the tuboid holding most of its matched instances; compare first sightings.
    matched = _matched_identities(truth, frames)
    if matched:
        first_true = truth.groupby("insect_id").datetime.min()
        first_seen = frames.groupby("tuboid_id").datetime.min()
        errors = np.array([
            abs((first_seen[t] - first_true[i]).total_seconds()) / 60 for i, t in matched.items()
        ])  # fmt: skip
        out.capture_time = {
            "n_insects": float(len(errors)),
            "median_minutes": float(np.median(errors)),
            "share_within_one_frame": float((errors <= 20.5).mean()),
        }
    if label_map is not None:
        out.taxonomy, out.per_taxon, out.confusion = capture_taxonomy(store, warehouse, frames, truth, label_map)
    return out


def capture_taxonomy(
    store: ObjectStore, warehouse: Warehouse, frames: pd.DataFrame, truth: pd.DataFrame, label_map: LabelMap
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """:func:`taxonomy_scores` over the captures (rows of view ``captures``) that follow one true insect.

    A capture follows the insect most of its frames' outline centroids lie on
    (:meth:`~stickypi_assets.synth.tuboid_labels.TruthOutlines.follows`, the simulated annotator's rule), not an
    outline IoU: the UID outlines a body without its legs, and a long-legged taxon (Culicidae) would otherwise
    never be matched and so never be scored. Captures that follow no single insect are counted apart.
    """
    from stickypi_assets.synth.tuboid_labels import TruthOutlines

    tracks = pd.read_parquet(
        io.BytesIO(store.get_bytes(ground_truth_key("tracks.parquet"))), columns=["insect_id", "taxon"]
    )
    true_taxon = dict(zip(tracks.insect_id, tracks.taxon, strict=True))
    outlines = TruthOutlines(truth)
    captured = warehouse.query("SELECT tuboid_id, label FROM captures")
    centroids = [shapely.Polygon(p).centroid for p in frames.polygon]
    located = frames.assign(cx=[c.x for c in centroids], cy=[c.y for c in centroids])
    points_of = {
        tuboid: list(zip(g.frame, g.cx, g.cy, strict=True)) for tuboid, g in located.groupby("tuboid_id")
    }
    taxa, labels, n_none = [], [], 0
    for tuboid, label in zip(captured.tuboid_id, captured.label, strict=True):
        followed = outlines.follows(points_of.get(tuboid, []))
        if followed.insect is None:
            n_none += 1
            continue
        taxa.append(true_taxon[followed.insect])
        labels.append(label)
    summary, per_taxon, confusion = taxonomy_scores(taxa, labels, label_map)
    return summary | {"n_captures_without_insect": float(n_none)}, per_taxon, confusion


def _matched_identities(truth: pd.DataFrame, frames: pd.DataFrame) -> dict[str, str]:
    """Insect id → tuboid id sharing most instances with it (outline IoU >= 0.5 in the same frame)."""
    from stickypi_assets.ml.sim.evaluate import polygon_iou_distance

    votes: dict[tuple[str, str], int] = {}
    pred_by = dict(tuple(frames.groupby("frame")))
    for stem, t in truth.groupby("image_stem"):
        p = pred_by.get(stem)
        if p is None:
            continue
        d = polygon_iou_distance(list(t["polygon"]), list(p["polygon"]), max_distance=0.5)
        for i, j in zip(*np.nonzero(~np.isnan(d)), strict=True):
            pair = (t.insect_id.iloc[i], p.tuboid_id.iloc[j])
            votes[pair] = votes.get(pair, 0) + 1
    best: dict[str, tuple[int, str]] = {}
    for (insect, tuboid), n in votes.items():
        if n > best.get(insect, (0, ""))[0]:
            best[insect] = (n, tuboid)
    return {i: t for i, (_, t) in best.items()}
