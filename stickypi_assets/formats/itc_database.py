"""``database.db`` written by the tuboid annotation tool: human labels for ITC training (reference 5.5).

A SQLite file with one append-only table ``ANNOTATIONS``; each "Submit" in the tool inserts a row, several
users may annotate the same tuboid. We read it read-only (the tool may be writing it concurrently on a
shared drive, and a reader must never create or modify the file), coerce NULL taxonomy cells to ``''``
(section 8 item 23: the original crashed on them) and keep the exact schema when writing, so files we
produce open in the original tool.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stickypi_assets.formats.errors import FormatError

TABLE = "ANNOTATIONS"
COLUMNS = (
    "tuboid_id",
    "user",
    "type",
    "order",
    "family",
    "genus",
    "species",
    "extra",
    "confidence",
    "notes",
    "datetime",
)
#: The tool's schema, verbatim (backquoted because ``order`` is an SQL keyword).
CREATE_TABLE_SQL = (
    "CREATE TABLE `ANNOTATIONS` (\n"
    "  `tuboid_id` TEXT,\n"
    "  `user` TEXT,\n"
    "  `type` TEXT,\n"
    "  `order` TEXT,\n"
    "  `family` TEXT,\n"
    "  `genus` TEXT,\n"
    "  `species` TEXT,\n"
    "  `extra` TEXT,\n"
    "  `confidence` REAL,\n"
    "  `notes` TEXT,\n"
    "  `datetime` REAL\n"
    ")"
)
#: ``type`` of rows the ITC dataset drops (exact match): the annotator could not decide.
AMBIGUOUS_TYPE = "Ambiguous"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_QUOTED_COLUMNS = ", ".join(f"`{c}`" for c in COLUMNS)


class AnnotationDatabaseError(FormatError):
    """A file that is not a readable annotation database, or a row that cannot be used."""


@dataclass(frozen=True)
class TuboidAnnotation:
    """One submitted annotation; taxonomy levels are ``''`` when not set (never None)."""

    tuboid_id: str
    user: str
    type: str
    order: str
    family: str
    genus: str
    species: str
    extra: str | None
    confidence: float | None
    notes: str | None
    datetime: float  # submission time, UNIX seconds

    @property
    def taxon(self) -> str:
        """``type.order.family.genus.species`` (``extra`` excluded): what the ITC label regexes match."""
        return ".".join((self.type, self.order, self.family, self.genus, self.species))

    @property
    def is_ambiguous(self) -> bool:
        return self.type == AMBIGUOUS_TYPE

    def as_row(self) -> tuple:
        return (
            self.tuboid_id,
            self.user,
            self.type,
            self.order,
            self.family,
            self.genus,
            self.species,
            self.extra,
            self.confidence,
            self.notes,
            self.datetime,
        )


def _check_sqlite_header(path: Path) -> None:
    """Reject non-SQLite files with a clear message before sqlite3's generic 'file is not a database'."""
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head and head != _SQLITE_MAGIC:
        raise AnnotationDatabaseError(
            f"{path} is not an SQLite database (annotation tool database.db expected)"
        )


def _text_or_empty(value: object) -> str:
    return "" if value is None else str(value)


def read_annotations(path: str | Path) -> list[TuboidAnnotation]:
    """All rows of ``ANNOTATIONS`` in table order; NULL taxonomy (and user) cells become ``''``.

    Raises :class:`AnnotationDatabaseError` (a :class:`FormatError`) when the file is not SQLite, has no
    ``ANNOTATIONS`` table or misses a column, or a row has no ``tuboid_id`` or a non-numeric ``datetime``;
    ``FileNotFoundError`` when it does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation database {path} not found")
    _check_sqlite_header(path)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
            ).fetchone()
            if not exists:
                raise AnnotationDatabaseError(f"{path}: no table {TABLE} (not an annotation tool database?)")
            raw_rows = conn.execute(f"SELECT {_QUOTED_COLUMNS} FROM `{TABLE}` ORDER BY rowid").fetchall()
    except sqlite3.DatabaseError as exc:
        raise AnnotationDatabaseError(f"{path}: cannot read table {TABLE}: {exc}") from None

    rows: list[TuboidAnnotation] = []
    for i, r in enumerate(raw_rows):
        tuboid_id, user, type_, order, family, genus, species, extra, confidence, notes, dt = r
        if not tuboid_id:
            raise AnnotationDatabaseError(f"{path}: row {i + 1} has no tuboid_id")
        try:
            dt_value = float(dt)
            conf_value = None if confidence is None else float(confidence)
            # NaN compares false both ways, so a NaN datetime would win or lose "latest" by row order
            if not math.isfinite(dt_value) or (conf_value is not None and not math.isfinite(conf_value)):
                raise ValueError("not finite")
        except (TypeError, ValueError, OverflowError):
            raise AnnotationDatabaseError(
                f"{path}: row {i + 1} ({tuboid_id}): datetime {dt!r} and confidence {confidence!r} "
                "must be finite numbers"
            ) from None
        rows.append(
            TuboidAnnotation(
                tuboid_id=str(tuboid_id),
                user=_text_or_empty(user),
                type=_text_or_empty(type_),
                order=_text_or_empty(order),
                family=_text_or_empty(family),
                genus=_text_or_empty(genus),
                species=_text_or_empty(species),
                extra=None if extra is None else str(extra),
                confidence=conf_value,
                notes=None if notes is None else str(notes),
                datetime=dt_value,
            )
        )
    return rows


def latest_per_tuboid(rows: Iterable[TuboidAnnotation]) -> dict[str, TuboidAnnotation]:
    """The annotation that counts for each tuboid, keyed by tuboid id (keys sorted).

    Multi-annotator rule (the original's, kept so labels reproduce its datasets): the **latest submission
    wins, whoever made it**. There is no consensus or vote between users, and ``confidence``, ``extra`` and
    ``notes`` are ignored. Rationale: the tool is append-only, so a later row is a correction or a more
    informed opinion (annotators revisit tuboids to fix mistakes). Ties on ``datetime`` go to the row that
    comes later in ``rows`` (table order = insertion order). ``Ambiguous`` rows are kept here; the ITC
    dataset drops them *after* this selection, so an ``Ambiguous`` verdict overrides an earlier label.
    """
    best: dict[str, tuple[float, int, TuboidAnnotation]] = {}
    for i, row in enumerate(rows):
        current = best.get(row.tuboid_id)
        if current is None or (row.datetime, i) >= (current[0], current[1]):
            best[row.tuboid_id] = (row.datetime, i, row)
    return {key: best[key][2] for key in sorted(best)}


def _insert(conn: sqlite3.Connection, rows: list[TuboidAnnotation]) -> None:
    conn.execute(CREATE_TABLE_SQL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
    placeholders = ", ".join("?" for _ in COLUMNS)
    conn.executemany(
        f"INSERT INTO `{TABLE}` ({_QUOTED_COLUMNS}) VALUES ({placeholders})", [r.as_row() for r in rows]
    )


def write_annotations(path: str | Path, rows: Iterable[TuboidAnnotation]) -> None:
    """Append ``rows`` to ``ANNOTATIONS``, creating the file/table with the tool's schema when absent.

    A new file is built under a temporary name and renamed, so no half-written database ever appears. An
    existing one is appended to in a single transaction (SQLite makes that atomic), as the tool itself does.
    """
    path = Path(path)
    rows = list(rows)
    if path.exists():
        _check_sqlite_header(path)
        try:
            with contextlib.closing(sqlite3.connect(path)) as conn, conn:
                _insert(conn, rows)
        except sqlite3.DatabaseError as exc:
            raise AnnotationDatabaseError(f"{path}: cannot append to {TABLE}: {exc}") from None
        return

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as conn, conn:
            _insert(conn, rows)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
