"""Warehouse table schemas: one place that says which tables exist and what their columns mean.

Every partitioned table carries its partition keys (``device``, ``date``) so that re-materializing a
partition replaces exactly its rows. Adding a column here is a migration: the warehouse adds missing
columns on start (``ALTER TABLE ... ADD COLUMN``), existing rows get NULL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    arrow_type: pa.DataType
    description: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    description: str
    partition_columns: tuple[str, ...] = ("device", "date")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    def ddl(self) -> str:
        cols = ",\n  ".join(f'"{c.name}" {c.duckdb_type}' for c in self.columns)
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n  {cols}\n)'


_TS = pa.timestamp("us", tz="UTC")

#: The partition keys every partitioned table starts with: re-materializing a device-day replaces these rows.
_PARTITION = (
    Column("device", "VARCHAR", pa.string(), "Sticky Pi device id (8 hex digits)"),
    Column("date", "DATE", pa.date32(), "UTC day of the partition"),
)
#: The image a row is about.
_IMAGE = (
    Column("datetime", "TIMESTAMPTZ", _TS, "UTC capture time of the image"),
    Column("image_key", "VARCHAR", pa.string(), "object key of the JPEG"),
)
_BBOX = tuple(
    Column(f"bbox_{axis}", "INTEGER", pa.int32(), f"bounding box {what} (px)")
    for axis, what in (("x", "left"), ("y", "top"), ("w", "width"), ("h", "height"))
)


def _provenance(stage: str) -> tuple[Column, Column]:
    """What produced a row: the model version (every output row records it) and the run."""
    return (
        Column("model_version", "VARCHAR", pa.string(), f"{stage} model version (md5 of its weights)"),
        Column("run_id", "VARCHAR", pa.string(), "run that wrote the row"),
    )


IMAGES = TableSpec(
    name="images",
    description="One row per raw image object of a device-day, including unreadable ones (status 'error').",
    columns=(
        *_PARTITION,
        Column("datetime", "TIMESTAMPTZ", _TS, "UTC capture time from the file name (NULL if unparseable)"),
        Column("object_key", "VARCHAR", pa.string(), "object-store key of the JPEG"),
        Column("md5", "VARCHAR", pa.string(), "md5 hex of the JPEG bytes"),
        Column("size_bytes", "BIGINT", pa.int64(), "object size in bytes"),
        Column("width", "INTEGER", pa.int32(), "pixels (NULL if undecodable)"),
        Column("height", "INTEGER", pa.int32(), "pixels (NULL if undecodable)"),
        Column("status", "VARCHAR", pa.string(), "'ok', 'error' or 'duplicate'"),
        Column("error", "VARCHAR", pa.string(), "why the image is not usable (NULL when ok)"),
        Column("temperature_c", "DOUBLE", pa.float64(), "device temperature from EXIF Make (NULL if absent)"),
        Column("humidity_pct", "DOUBLE", pa.float64(), "device relative humidity from EXIF Make"),
        Column("run_id", "VARCHAR", pa.string(), "run that wrote the row (NULL outside Dagster)"),
        Column("ingested_at", "TIMESTAMPTZ", _TS, "when the row was written"),
    ),
)

INSTANCES = TableSpec(
    name="instances",
    description="One row per insect instance the UID found in an image (table of uid_segmentations).",
    columns=(
        *_PARTITION,
        *_IMAGE,
        Column("instance_id", "VARCHAR", pa.string(), "'<device>.<datetime>.<NNNN>', unique per image and model run"),
        Column("class_name", "VARCHAR", pa.string(), "class from the bundle palette, e.g. 'insect'"),
        Column("polygon_wkt", "VARCHAR", pa.string(), "outline in image pixels, WKT POLYGON"),
        *_BBOX,
        Column("area", "DOUBLE", pa.float64(), "polygon area (px²)"),
        Column("centroid_x", "DOUBLE", pa.float64(), "centroid x (px)"),
        Column("centroid_y", "DOUBLE", pa.float64(), "centroid y (px)"),
        Column("score", "DOUBLE", pa.float64(), "detector confidence in [0, 1] (used by active learning)"),
        Column("carried_from", "VARCHAR", pa.string(),
               "image_key of the earlier frame whose detector pass found it, carried over because its tile had not "
               "changed (change-aware inference); NULL: found on this frame"),
        *_provenance("UID"),
    ),
)

SEGMENTED_IMAGES = TableSpec(
    name="segmented_images",
    description="One row per image of the device-day given to the UID: instance count, or why it failed.",
    columns=(
        *_PARTITION,
        *_IMAGE,
        Column("svg_key", "VARCHAR", pa.string(), "object key of the annotation SVG (NULL on error)"),
        Column("status", "VARCHAR", pa.string(), "'ok', 'error' (inference failed) or 'skipped' (image unusable)"),
        Column("error", "VARCHAR", pa.string(), "why (NULL when ok)"),
        Column("n_instances", "INTEGER", pa.int32(), "number of instances found"),
        Column("n_tiles", "INTEGER", pa.int32(), "inference tiles of the frame"),
        Column("tiles_run", "INTEGER", pa.int32(),
               "tiles the detector ran on (the others had not changed: their detections were carried over)"),
        Column("full_pass", "VARCHAR", pa.string(),
               "why every tile ran (first frame, every N frames, illumination change); NULL: only changed tiles"),
        Column("seconds", "DOUBLE", pa.float64(), "decode + model + post-processing time for the image"),
        *_provenance("UID"),
    ),
)

TUBOIDS = TableSpec(
    name="tuboids",
    description=(
        "One row per tuboid (one insect tracked over time) per device-day it was seen on (table of tuboids). "
        "An insect on the card for several days has one row per day, all with the same tuboid_id."
    ),
    columns=(
        *_PARTITION,
        Column(
            "tuboid_id",
            "VARCHAR",
            pa.string(),
            "stable id '<device>.<first datetime>.<x>_<y>' of the track, the same on every day it spans",
        ),
        Column("folder_id", "VARCHAR", pa.string(), "original-layout id '<series>.<NNNN>' of this day's folder"),
        Column("folder_key", "VARCHAR", pa.string(), "object prefix of the tuboid folder (NULL if not written)"),
        Column("not_written_reason", "VARCHAR", pa.string(), "why no folder was written (too few frames today)"),
        Column("track_first_seen", "TIMESTAMPTZ", _TS, "first frame of the track ever (capture time)"),
        Column("first_seen", "TIMESTAMPTZ", _TS, "first frame of the track on this day"),
        Column("last_seen", "TIMESTAMPTZ", _TS, "last frame of the track on this day"),
        Column("n_frames", "INTEGER", pa.int32(), "frames of the track on this day"),
        Column("n_frames_total", "INTEGER", pa.int32(), "frames of the track up to the end of this day"),
        Column("continued", "BOOLEAN", pa.bool_(), "the track started on an earlier day"),
        Column("open", "BOOLEAN", pa.bool_(), "the track may continue on the next day"),
        Column("head_x", "DOUBLE", pa.float64(), "centroid x of the track's first instance ever (px)"),
        Column("head_y", "DOUBLE", pa.float64(), "centroid y of the track's first instance ever (px)"),
        Column("median_area", "DOUBLE", pa.float64(), "median instance area on this day (px²): the insect's size"),
        Column("max_length", "DOUBLE", pa.float64(), "largest bounding-box side on this day (px)"),
        Column("mean_match_score", "DOUBLE", pa.float64(), "mean matcher score of the day's links (NULL if none)"),
        *_provenance("SIM"),
    ),
)

TUBOID_FRAMES = TableSpec(
    name="tuboid_frames",
    description="One row per instance of a tuboid (which insect instance of which image belongs to which tuboid).",
    columns=(
        *_PARTITION,
        Column("tuboid_id", "VARCHAR", pa.string(), "stable tuboid id (see table tuboids)"),
        Column("frame_index", "INTEGER", pa.int32(), "rank of the frame in the tuboid on this day (0 = first)"),
        *_IMAGE,
        Column("svg_key", "VARCHAR", pa.string(), "object key of the UID annotation SVG the instance comes from"),
        Column("instance_id", "VARCHAR", pa.string(), "instance id in table instances ('<device>.<datetime>.<NNNN>')"),
        Column("polygon_wkt", "VARCHAR", pa.string(), "outline in image pixels, WKT POLYGON"),
        *_BBOX,
        Column("area", "DOUBLE", pa.float64(), "polygon area (px²)"),
        Column(
            "match_score",
            "DOUBLE",
            pa.float64(),
            "matcher score of the link from the previous instance of the tuboid (NULL for its first)",
        ),
        *_provenance("SIM"),
    ),
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (IMAGES, INSTANCES, SEGMENTED_IMAGES, TUBOIDS, TUBOID_FRAMES)}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown warehouse table {name!r}; known: {sorted(TABLES)}") from None


CLASSIFICATIONS = TableSpec(
    name="classifications",
    description=(
        "One row per tuboid row of the device-day (table of classifications): the ITC's label with its "
        "taxonomy and probabilities, or why the tuboid was not classified."
    ),
    columns=(
        *_PARTITION,
        Column("tuboid_id", "VARCHAR", pa.string(), "stable tuboid id (see table tuboids)"),
        Column("folder_id", "VARCHAR", pa.string(), "the day's tuboid folder that was classified"),
        Column("n_frames", "INTEGER", pa.int32(), "frames of the tuboid on this day (the folder's)"),
        Column(
            "status",
            "VARCHAR",
            pa.string(),
            "'ok', 'not_classified' (no folder: too few frames today) or 'error' (folder unreadable)",
        ),
        Column("error", "VARCHAR", pa.string(), "why not (NULL when ok)"),
        Column("label", "INTEGER", pa.int32(), "class id in the model's label list"),
        Column(
            "pattern", "VARCHAR", pa.string(), "the label's regular expression over type.order.family.genus.species"
        ),
        Column("type", "VARCHAR", pa.string(), "taxonomy named by the pattern (e.g. Insecta)"),
        Column("order", "VARCHAR", pa.string(), "taxonomic order (e.g. Diptera), NULL when the label is coarser"),
        Column("family", "VARCHAR", pa.string(), "family"),
        Column("genus", "VARCHAR", pa.string(), "genus"),
        Column("species", "VARCHAR", pa.string(), "species"),
        Column("probability", "DOUBLE", pa.float64(), "probability of the label (softmax)"),
        Column("top_k", "VARCHAR", pa.string(), "JSON list of the 3 most probable labels: [{label, pattern, p}]"),
        Column("probabilities", "VARCHAR", pa.string(), "JSON list: the probability of every label, by class id"),
        *_provenance("ITC"),
    ),
)

TABLES[CLASSIFICATIONS.name] = CLASSIFICATIONS

MODELS = TableSpec(
    name="models",
    description="Every registered model version of every stage, its validation metric and which one is current.",
    partition_columns=(),
    columns=(
        Column("stage", "VARCHAR", pa.string(), "'uid', 'sim' or 'itc'"),
        Column("bundle", "VARCHAR", pa.string(), "bundle name, e.g. universal-insect-detector"),
        Column("version", "VARCHAR", pa.string(), "md5 of the weights: the model_version of every output row"),
        Column("created_at", "TIMESTAMPTZ", _TS, "when the version was registered"),
        Column(
            "metric_name",
            "VARCHAR",
            pa.string(),
            "validation metric deciding promotion (uid f1, sim auc, itc accuracy)",
        ),
        Column("metric_value", "DOUBLE", pa.float64(), "its value on the version's validation data"),
        Column("metrics_json", "VARCHAR", pa.string(), "all validation metrics (JSON)"),
        Column("n_training_files", "INTEGER", pa.int32(), "annotation files in the training-data manifest"),
        Column("data_fingerprint", "VARCHAR", pa.string(), "hash of the training-data manifest (keys and md5s)"),
        Column("is_current", "BOOLEAN", pa.bool_(), "the version the assets use now"),
        Column("decision", "VARCHAR", pa.string(), "why it was or was not made current"),
        Column("object_prefix", "VARCHAR", pa.string(), "where the bundle is in the object store"),
    ),
)
TABLES[MODELS.name] = MODELS

_FLOATS = pa.list_(pa.float32())
_STRINGS = pa.list_(pa.string())


def _item(what: str) -> Column:
    return Column("item", "VARCHAR", pa.string(), what)


_SCORED = (
    Column("status", "VARCHAR", pa.string(), "'ok', or 'error' (could not be read or scored; see error)"),
    Column("error", "VARCHAR", pa.string(), "why not scored (NULL when ok)"),
    Column("n_detections", "INTEGER", pa.int32(), "detections the model reports (seen in >= half of the passes)"),
    Column("det_scores", "FLOAT[]", _FLOATS, "their confidences (Roboflow's confidence band reads them)"),
    Column("det_labels", "VARCHAR[]", _STRINGS, "their classes (image) or the predicted label pattern (tuboid)"),
    Column("embedding", "FLOAT[]", _FLOATS, "backbone features of the item (diversity: CoreSet distances)"),
)

IMAGE_SCORES = TableSpec(
    name="image_scores",
    description=(
        "One row per usable image of the device-day: how much annotating it would teach the current UID "
        "(maskAL certainty over MC-dropout passes), read by the annotation queue."
    ),
    columns=(
        *_PARTITION,
        _item("image stem '<device>.<YYYY-MM-DD_HH-MM-SS>' (the name annotators see)"),
        *_IMAGE,
        Column("svg_key", "VARCHAR", pa.string(), "the UID's annotation SVG of the image (its pre-annotation)"),
        *_SCORED,
        Column("maskal_certainty", "DOUBLE", pa.float64(), "maskAL image certainty in [0, 1] (low = ask first)"),
        Column("maskal_uncertainty", "DOUBLE", pa.float64(), "1 - certainty, the score of sampler 'maskal'"),
        Column("maskal_pass", "VARCHAR", pa.string(), "'boxes' (cheap pass, all images) or 'masks' (full, top share)"),
        Column("n_observations", "INTEGER", pa.int32(), "detection clusters over the passes (maskAL observations)"),
        Column("empty", "BOOLEAN", pa.bool_(), "no detection in any pass (scored as uncertain: small insects missed)"),
        *_provenance("UID"),
    ),
)

TUBOID_SCORES = TableSpec(
    name="tuboid_scores",
    description=(
        "One row per classified tuboid folder of the device-day: the ITC's uncertainty over MC-dropout passes and "
        "the disagreement between the tuboid's own frames, read by the annotation queue."
    ),
    columns=(
        *_PARTITION,
        _item("tuboid folder id '<series>.<NNNN>' (the folder annotators label)"),
        Column("tuboid_id", "VARCHAR", pa.string(), "stable tuboid id (see table tuboids)"),
        Column("datetime", "TIMESTAMPTZ", _TS, "first frame of the folder"),
        Column("folder_key", "VARCHAR", pa.string(), "object prefix of the tuboid folder"),
        Column("n_frames", "INTEGER", pa.int32(), "frames of the folder"),
        *_SCORED,
        Column("label", "INTEGER", pa.int32(), "predicted class id (mean over the passes)"),
        Column("pattern", "VARCHAR", pa.string(), "its label pattern"),
        Column("probability", "DOUBLE", pa.float64(), "its mean probability"),
        Column("top_k", "VARCHAR", pa.string(), "JSON list of the 3 most probable labels: [{label, pattern, p}]"),
        Column("margin", "DOUBLE", pa.float64(), "1 - (p1 - p2): high when two labels compete"),
        Column("entropy", "DOUBLE", pa.float64(), "entropy of the mean probabilities"),
        Column("bald", "DOUBLE", pa.float64(), "mutual information between label and dropout mask (BALD)"),
        Column("least_confidence", "DOUBLE", pa.float64(), "1 - p1"),
        Column("frame_disagreement", "DOUBLE", pa.float64(), "disagreement between the tuboid's own frames"),
        Column("vote_disagreement", "DOUBLE", pa.float64(), "share of frames voting for another label"),
        Column("drift", "DOUBLE", pa.float64(),
               "how strongly the day's taxon drift warnings point at this folder (0-1; NULL: none does)"),
        Column("drift_reason", "VARCHAR", pa.string(), "the drift warning that points at it, and why"),
        *_provenance("ITC"),
    ),
)

ANNOTATION_QUEUE = TableSpec(
    name="annotation_queue",
    description=(
        "What annotators should annotate next, batch after batch: every item the platform asked for, why, where "
        "its pre-annotation is, and whether its annotation arrived. An item is never asked for twice."
    ),
    partition_columns=(),
    columns=(
        Column("kind", "VARCHAR", pa.string(), "'image' (UID polygons) or 'tuboid' (ITC taxonomy)"),
        _item("image stem or tuboid folder id"),
        Column("device", "VARCHAR", pa.string(), "Sticky Pi device id"),
        Column("date", "DATE", pa.date32(), "UTC day of the item"),
        Column("datetime", "TIMESTAMPTZ", _TS, "capture time (image) or first frame (tuboid)"),
        Column("batch", "INTEGER", pa.int32(), "batch number (1 = the first batch asked for)"),
        Column("rank", "INTEGER", pa.int32(), "order within the batch (1 = ask first)"),
        Column("score", "DOUBLE", pa.float64(), "the picking sampler's score"),
        Column("sampler", "VARCHAR", pa.string(), "which sampler picked it (maskal, margin, diversity, random, ...)"),
        Column("reason", "VARCHAR", pa.string(), "why, in words"),
        Column("status", "VARCHAR", pa.string(), "'queued', then 'annotated' once its annotation is in the store"),
        Column("pre_annotation_key", "VARCHAR", pa.string(), "the model's annotation to correct (SVG or folder)"),
        Column("annotation_key", "VARCHAR", pa.string(), "the annotation that arrived (NULL while queued)"),
        Column("model_version", "VARCHAR", pa.string(), "model version whose scores chose the item"),
        Column("queued_at", "TIMESTAMPTZ", _TS, "when the item was queued"),
        Column("annotated_at", "TIMESTAMPTZ", _TS, "when its annotation was first seen"),
    ),
)

AL_ROUNDS = TableSpec(
    name="al_rounds",
    description=(
        "One row per new model version of a stage seen by the annotation queue: is annotating still paying? "
        "Contradictions and Cohen's kappa against the previous version on a fixed sample of unlabeled items, the "
        "validation metric, and the stalled warning."
    ),
    partition_columns=(),
    columns=(
        Column("stage", "VARCHAR", pa.string(), "'uid' (images) or 'itc' (tuboids)"),
        Column("round", "INTEGER", pa.int32(), "1 for the first model version seen, then one per new version"),
        Column("model_version", "VARCHAR", pa.string(), "the version whose scores this round read"),
        Column("previous_version", "VARCHAR", pa.string(), "the version of the round before (NULL for round 1)"),
        Column("created_at", "TIMESTAMPTZ", _TS, "when the round was recorded"),
        Column("n_labels", "INTEGER", pa.int32(), "annotation items of the stage in the store (what it learns from)"),
        Column("metric_name", "VARCHAR", pa.string(), "the stage's validation metric (uid f1, itc accuracy)"),
        Column("metric_value", "DOUBLE", pa.float64(), "its value for this version (registry)"),
        Column("n_sample", "INTEGER", pa.int32(), "sampled items predicted by both versions"),
        Column("contradictions", "DOUBLE", pa.float64(), "share of them whose prediction changed (NULL for round 1)"),
        Column("kappa", "DOUBLE", pa.float64(), "Cohen's kappa between the two versions' predictions"),
        Column("stalled", "BOOLEAN", pa.bool_(), "the metric moved less than the tolerance over the last 3 rounds"),
        Column("predictions", "VARCHAR", pa.string(), "JSON {item: prediction} of the fixed sample (next round)"),
    ),
)

for _spec in (IMAGE_SCORES, TUBOID_SCORES, ANNOTATION_QUEUE, AL_ROUNDS):
    TABLES[_spec.name] = _spec


@dataclass(frozen=True)
class DerivedTable:
    """A table computed by SQL from other tables, kept up to date by the warehouse in each load's transaction.

    Why tables and not views: a view recomputes its whole season on every query (each tuboid's longest day, its
    classification), and a filter on one device or week is not pushed below that work. A derived table is
    recomputed only for the rows a load can change: the rows whose ``key`` values appear in the changed source
    rows, before or after the load. ``select`` *is* the table's meaning: ``select("")`` over the whole warehouse
    gives the table a full rebuild gives, and a test checks that incremental loads end there too.

    * ``select(scope)``: the ``SELECT`` of the table's rows; ``scope`` is inserted after each source table's
      ``FROM`` (a ``SEMI JOIN`` on the changed keys) and is ``""`` for a full recomputation.
    * ``key``: the columns that identify the rows a change recomputes (one source row changes the table's rows of
      its key only).
    * ``sources``: ``{source table: the SELECT list giving the key of a source row}``; a source may be another
      derived table listed before this one.
    * ``order_by``: the order of a full recomputation, so that zone maps skip the rest of the table when a query
      filters on the first columns (one device, one week).
    """

    spec: TableSpec
    select: Callable[[str], str]
    key: tuple[str, ...]
    sources: Mapping[str, str]
    order_by: str

    @property
    def name(self) -> str:
        return self.spec.name

    def definition(self) -> str:
        """The full SQL, stored beside the table: a change of definition rebuilds the table on the next open."""
        return f"{self.select('')} ORDER BY {self.order_by}"


def _capture_rows_select(scope: str) -> str:
    return f"""
        WITH t AS (
            SELECT tuboid_id, device, min(track_first_seen) AS capture_time, max(last_seen) AS last_seen,
                   sum(n_frames) AS n_frames, median(median_area) AS size_px, count(*) AS n_days,
                   arg_max(model_version, "date") AS sim_model_version
            FROM tuboids {scope} GROUP BY tuboid_id, device
        ), c AS (
            SELECT *, row_number() OVER (PARTITION BY device, tuboid_id ORDER BY n_frames DESC, "date") AS rank
            FROM classifications {scope} WHERE status = 'ok'
        )
        SELECT t.tuboid_id, t.device, t.capture_time, t.last_seen, t.n_days, t.n_frames,
               coalesce(nullif(concat_ws('.', c.type, c."order", c.family, c.genus, c.species), ''),
                        'unclassified') AS taxon,
               c.type, c."order", c.family, c.genus, c.species, c.label, c.probability AS confidence,
               t.size_px, t.sim_model_version, c.model_version AS itc_model_version
        FROM t LEFT JOIN c ON c.device = t.device AND c.tuboid_id = t.tuboid_id AND c.rank = 1
        WHERE c.type IS DISTINCT FROM 'Background'
    """


_CAPTURE_DATE = """CAST(timezone('UTC', capture_time) AS DATE)"""


def _daily_taxon_counts_select(scope: str) -> str:
    return f"""
        SELECT device, "date", taxon, count(*) AS n_captures
        FROM (SELECT device, {_CAPTURE_DATE} AS "date", taxon FROM capture_rows) AS r {scope}
        GROUP BY ALL
    """


_TAXONOMY = tuple(
    Column(rank, "VARCHAR", pa.string(), f"{rank} of the capture's classification")
    for rank in ("type", "order", "family", "genus", "species")
)

CAPTURE_ROWS = DerivedTable(
    spec=TableSpec(
        name="capture_rows",
        description=(
            "One row per insect (tuboid), maintained from tables tuboids and classifications; analysts read it "
            "through view captures (which adds size_mm2)."
        ),
        partition_columns=(),
        columns=(
            Column("tuboid_id", "VARCHAR", pa.string(), "stable tuboid id (see table tuboids)"),
            Column("device", "VARCHAR", pa.string(), "Sticky Pi device id"),
            Column("capture_time", "TIMESTAMPTZ", _TS, "the track's first frame ever"),
            Column("last_seen", "TIMESTAMPTZ", _TS, "the track's last frame over all its days"),
            Column("n_days", "BIGINT", pa.int64(), "days the insect was seen on"),
            Column("n_frames", "BIGINT", pa.int64(), "frames over all its days"),
            Column("taxon", "VARCHAR", pa.string(), "type.order.family.genus.species as far as the label goes"),
            *_TAXONOMY,
            Column("label", "INTEGER", pa.int32(), "class id of the classification"),
            Column("confidence", "DOUBLE", pa.float64(), "probability of the label"),
            Column("size_px", "DOUBLE", pa.float64(), "median over days of the daily median area (px²)"),
            Column("sim_model_version", "VARCHAR", pa.string(), "SIM model version of the insect's last day"),
            Column("itc_model_version", "VARCHAR", pa.string(), "ITC model version of the classification used"),
        ),
    ),
    select=_capture_rows_select,
    key=("device", "tuboid_id"),
    sources={"tuboids": "device, tuboid_id", "classifications": "device, tuboid_id"},
    order_by="device, capture_time, tuboid_id",
)

DAILY_TAXON_COUNTS = DerivedTable(
    spec=TableSpec(
        name="daily_taxon_counts",
        description="Captures per device, UTC capture date and taxon, maintained from capture_rows.",
        partition_columns=(),
        columns=(
            Column("device", "VARCHAR", pa.string(), "Sticky Pi device id"),
            Column("date", "DATE", pa.date32(), "UTC day of capture"),
            Column("taxon", "VARCHAR", pa.string(), "taxon, or 'unclassified'"),
            Column("n_captures", "BIGINT", pa.int64(), "insects captured"),
        ),
    ),
    select=_daily_taxon_counts_select,
    key=("device", "date"),
    sources={"capture_rows": f'device, {_CAPTURE_DATE} AS "date"'},
    order_by='device, "date", taxon',
)

#: The derived tables in dependency order (a table's sources come before it).
DERIVED_TABLES: dict[str, DerivedTable] = {d.name: d for d in (CAPTURE_ROWS, DAILY_TAXON_COUNTS)}


def analyst_views(px_per_mm: float | None = None) -> dict[str, str]:
    """``{view name: SELECT}`` of the analysts' views (recreated on every start), with the derived tables above.

    * ``captures`` (view over table ``capture_rows``): one row per insect (tuboid). Tuboids the ITC classifies as
      ``Background`` (dirt, a leaf, a false detection: the reference's label 0) are not insects and are left out;
      they stay in table ``classifications``. Unclassified tuboids stay in (``taxon = 'unclassified'``). Capture
      time = the track's first frame ever; last seen over all its days; taxonomy and confidence from the
      classification of its longest daily segment (ties: the earliest day), the one with the most evidence; size =
      median over days of the daily median area, in px² and, when ``px_per_mm`` is configured
      (``STICKYPI_PX_PER_MM``), in mm². A view, not a table, so that changing the scale needs no rebuild.
    * ``daily_taxon_counts`` (a derived table): captures per device, UTC capture date and taxon
      (``unclassified`` when the tuboid has no classification yet).
    """
    mm2 = f"size_px / {float(px_per_mm) ** 2!r}" if px_per_mm else "CAST(NULL AS DOUBLE)"
    captures = f"""
        SELECT tuboid_id, device, capture_time, last_seen, n_days, n_frames, taxon, type, "order", family, genus,
               species, label, confidence, size_px, {mm2} AS size_mm2, sim_model_version, itc_model_version
        FROM capture_rows
    """
    return {"captures": captures}
