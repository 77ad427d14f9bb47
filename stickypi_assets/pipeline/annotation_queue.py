"""The annotation queue: which images and tuboids people should annotate next (no Dagster: used by the
``annotation_queue`` asset, ``stickypi al queue`` and notebooks).

One update (:func:`update_queue`) does, in this order:

1. **statuses**: a queued item whose annotation is now in the store becomes ``annotated`` (an image when an SVG
   named ``<stem>.svg`` or ``a_<stem>.svg`` is under ``annotations/uid/``; a tuboid when a folder named after its
   folder id is under ``annotations/itc/``). Those annotations are what the annotation sensors retrain on;
2. **the next batch** of each kind under its budget, from the mix of samplers over the current scores (tables
   ``image_scores`` and ``tuboid_scores``, rows with ``status='ok'``). Anything already queued, whatever its status,
   or already annotated (queued or not: the training data) is never asked for: it stays in the pool only as an
   anchor the diversity sampler moves away from. A tuboid seen on several days is one candidate, its folder with
   the most frames (the most evidence). No new batch is asked for while a batch's worth of items of that kind
   (``max_open``, default the budget) still waits for its annotation: a queue nobody works through does not grow,
   and re-running an update with no new annotation changes nothing;
3. **pre-annotations** of the new items, what the annotator corrects rather than draws from scratch: for an image,
   the UID's SVG (the predicted polygons, the JPEG embedded) at ``pre_annotations/uid/<device>/<stem>.svg``, ready
   for Inkscape as the original annotators worked; for a tuboid, its folder copied to
   ``pre_annotations/itc/<folder id>/`` with ``candidates.json``, the ITC's top-3 labels. A pre-annotation that
   cannot be written is reported and its item left out of the batch, so it is asked for again next time.

Each update also records the halting signals of a new model version (table ``al_rounds``,
:mod:`stickypi_assets.pipeline.al_rounds`). The queue is a small unpartitioned table, replaced whole by each
update.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from stickypi_assets.active.mixes import parse_mix
from stickypi_assets.active.selection import select_batch
from stickypi_assets.pipeline.al_rounds import ModelState, next_round, read_rounds
from stickypi_assets.settings import Settings
from stickypi_assets.storage.keys import (
    annotation_prefix,
    pre_annotation_svg_key,
    pre_annotation_tuboid_prefix,
)
from stickypi_assets.storage.object_store import ObjectStore, ObjectStoreError
from stickypi_assets.storage.tables import AL_ROUNDS, ANNOTATION_QUEUE
from stickypi_assets.storage.warehouse import Warehouse

log = logging.getLogger(__name__)

KINDS = ("image", "tuboid")
#: Per kind: the score table, the mix grammar's kind, the default window between two items of one device.
SCORE_TABLE = {"image": "image_scores", "tuboid": "tuboid_scores"}
MIX_KIND = {"image": "images", "tuboid": "tuboids"}
WINDOW = {"image": timedelta(hours=2), "tuboid": None}


@dataclass(frozen=True)
class QueuePolicy:
    """How a batch is picked: per kind the budget and the mix (``maskal:0.7,diversity:0.2,random:0.1``)."""

    budgets: dict[str, int]
    mixes: dict[str, str]
    seed: int = 0
    #: No new batch of a kind while this many of its items wait for annotation (``None``: its budget, so a
    #: re-run with no new annotation asks for nothing new).
    max_open: int | None = None
    #: The UID's score threshold (Roboflow's confidence band sampler, ``band``, centres on it).
    threshold: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> QueuePolicy:
        """Budgets and mixes of ``STICKYPI_AL_*``; a malformed mix is a ``ValueError`` naming its variable."""
        for variable, spec, kind in (("STICKYPI_AL_IMAGE_MIX", settings.al_image_mix, "images"),
                                     ("STICKYPI_AL_TUBOID_MIX", settings.al_tuboid_mix, "tuboids")):  # fmt: skip
            try:
                parse_mix(spec, kind)
            except ValueError as exc:
                raise ValueError(f"{variable}={spec!r}: {exc}") from None
        return cls(budgets={"image": settings.al_image_budget, "tuboid": settings.al_tuboid_budget},
                   mixes={"image": settings.al_image_mix, "tuboid": settings.al_tuboid_mix})  # fmt: skip


@dataclass
class QueueUpdate:
    queue: pd.DataFrame
    new: pd.DataFrame
    newly_annotated: int
    problems: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    rounds: list[dict] = field(default_factory=list)

    def open_count(self, kind: str) -> int:
        q = self.queue
        return int(((q["kind"] == kind) & (q["status"] == "queued")).sum()) if len(q) else 0


def annotated_items(store: ObjectStore) -> dict[tuple[str, str], str]:
    """``{(kind, item): annotation key}`` of what is under ``annotations/`` (see the module docstring)."""
    found: dict[tuple[str, str], str] = {}
    for info in store.list(annotation_prefix("uid")):
        name = info.key.rsplit("/", 1)[-1]
        if name.lower().endswith(".svg"):
            found.setdefault(("image", name[:-4].removeprefix("a_")), info.key)
    for info in store.list(annotation_prefix("itc")):
        parts = info.key.split("/")
        if parts[-1] == "metadata.txt" and len(parts) >= 2:
            found.setdefault(("tuboid", parts[-2]), info.key.rsplit("/", 1)[0] + "/")
    return found


def read_queue(warehouse: Warehouse) -> pd.DataFrame:
    """The queue's rows (empty with its columns before the first update)."""
    rows = warehouse.query(f'SELECT * FROM "{ANNOTATION_QUEUE.name}" ORDER BY batch, kind, rank')
    return rows if len(rows) else pd.DataFrame(columns=ANNOTATION_QUEUE.column_names)


def score_pool(warehouse: Warehouse, kind: str) -> pd.DataFrame:
    """The candidates of ``kind``: the scored rows, a tuboid once (its folder with the most frames)."""
    table = SCORE_TABLE[kind]
    if kind == "tuboid":
        sql = f"""SELECT * FROM "{table}" WHERE status = 'ok'
                  QUALIFY row_number() OVER (PARTITION BY device, tuboid_id ORDER BY n_frames DESC, item) = 1"""
    else:
        sql = f"""SELECT * FROM "{table}" WHERE status = 'ok'"""
    pool = warehouse.query(sql + " ORDER BY item")
    return pool.drop_duplicates("item").reset_index(drop=True)


def _pre_annotate(store: ObjectStore, kind: str, item: str, row: pd.Series) -> str:
    """Write the pre-annotation of one picked item (``row``: its score row); its key."""
    if kind == "image":
        key = pre_annotation_svg_key(row["device"], item)
        store.put_bytes(key, store.get_bytes(row["svg_key"]), content_type="image/svg+xml")
        return key
    prefix = pre_annotation_tuboid_prefix(item)
    source = row["folder_key"].rstrip("/") + "/"
    for info in list(store.list(source)):
        store.put_bytes(prefix + info.key[len(source):], store.get_bytes(info.key))
    top_k = row["top_k"]
    candidates = {"folder_id": item, "tuboid_id": row["tuboid_id"], "model_version": row["model_version"],
                  "candidates": json.loads(top_k) if isinstance(top_k, str) else []}  # fmt: skip
    store.put_bytes(prefix + "candidates.json", json.dumps(candidates, indent=2).encode(),
                    content_type="application/json")  # fmt: skip
    return prefix


def update_queue(
    store: ObjectStore,
    warehouse: Warehouse,
    policy: QueuePolicy,
    *,
    models: dict[str, ModelState] | None = None,
    now: datetime | None = None,
) -> QueueUpdate:
    """Statuses, the next batches and their pre-annotations (see the module docstring); writes the queue table,
    and a round of table ``al_rounds`` per kind whose current model (``models``) is new
    (:mod:`stickypi_assets.pipeline.al_rounds`)."""
    now = now or datetime.now(UTC)
    for kind in KINDS:  # a malformed mix fails before anything is written
        if policy.budgets.get(kind, 0) > 0:
            parse_mix(policy.mixes[kind], MIX_KIND[kind])
    queue = read_queue(warehouse).copy()
    found = annotated_items(store)
    newly = 0
    for index, row in queue.iterrows():
        key = found.get((row["kind"], str(row["item"])))
        if row["status"] == "queued" and key is not None:
            queue.loc[index, ["status", "annotation_key", "annotated_at"]] = ["annotated", key, now]
            newly += 1
    update = QueueUpdate(queue=queue, new=pd.DataFrame(columns=ANNOTATION_QUEUE.column_names), newly_annotated=newly)
    batch_no = int(queue["batch"].max()) + 1 if len(queue) else 1
    new_rows = []
    rounds = read_rounds(warehouse)
    for kind in KINDS:
        pool = score_pool(warehouse, kind)
        annotated = {item for (k, item), _ in found.items() if k == kind}
        if models and kind in models and len(pool):
            row = next_round(rounds, kind, pool, models[kind], exclude=annotated, now=now)
            if row is not None:
                update.rounds.append(row)
        budget = int(policy.budgets.get(kind, 0))
        if budget <= 0:
            update.skipped[kind] = "budget 0"
            continue
        if update.open_count(kind) >= (budget if policy.max_open is None else policy.max_open):
            update.skipped[kind] = f"{update.open_count(kind)} {kind}s still wait for annotation"
            continue
        if pool.empty:
            update.skipped[kind] = f"no scored {kind}s (table {SCORE_TABLE[kind]})"
            continue
        seen = {str(i) for i in queue.loc[queue["kind"] == kind, "item"]} if len(queue) else set()
        seen |= annotated
        mix = parse_mix(policy.mixes[kind], MIX_KIND[kind], seed=policy.seed + batch_no, labeled=seen,
                        threshold=policy.threshold)  # fmt: skip
        batch = select_batch(pool, mix, budget, exclude=seen, window=WINDOW[kind])
        if batch.empty:
            update.skipped[kind] = f"every scored {kind} is already queued or annotated"
            continue
        info = pool.set_index("item")
        rank = 0
        for picked in batch.itertuples(index=False):
            row = info.loc[picked.item]
            try:
                pre_key = _pre_annotate(store, kind, picked.item, row)
            except (ObjectStoreError, OSError, ValueError) as exc:
                update.problems.append((f"{kind} {picked.item}", f"pre-annotation not written: {exc}"))
                log.warning("%s %s: pre-annotation not written (%s)", kind, picked.item, exc)
                continue
            rank += 1
            new_rows.append({
                "kind": kind, "item": picked.item, "device": row["device"], "date": row["date"],
                "datetime": picked.datetime, "batch": batch_no, "rank": rank, "score": picked.score,
                "sampler": picked.sampler, "reason": picked.reason, "status": "queued",
                "pre_annotation_key": pre_key, "annotation_key": None, "model_version": row["model_version"],
                "queued_at": now, "annotated_at": None,
            })  # fmt: skip
    if new_rows:
        update.new = pd.DataFrame(new_rows, columns=ANNOTATION_QUEUE.column_names)
        update.queue = pd.concat([queue, update.new], ignore_index=True) if len(queue) else update.new.copy()
    if update.rounds:
        new_rounds = pd.DataFrame(update.rounds)
        all_rounds = pd.concat([rounds, new_rounds], ignore_index=True) if len(rounds) else new_rounds
        warehouse.replace_table(AL_ROUNDS.name, all_rounds, publish=False)
    warehouse.replace_table(ANNOTATION_QUEUE.name, update.queue)
    return update
