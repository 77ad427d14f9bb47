"""Annotation tool ``database.db`` (reference 5.5): the real 9-row file, round trips and bad inputs."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.itc_database import (
    CREATE_TABLE_SQL,
    TuboidAnnotation,
    latest_per_tuboid,
    read_annotations,
    write_annotations,
)
from stickypi_assets_tests.conftest import stickypi_path

REAL_TAXA = [
    "Insecta.Diptera.Muscidae..",
    "Insecta.Hemiptera.Cicadellidae.Edwardsiana.Edwardsiana rosae",
    "Insecta.Diptera.Culicidae..",
    "Insecta.Diptera.Muscidae..",
    "Insecta.Hymenoptera.Figitidae..",
    "Insecta.Hemiptera.Cicadellidae..",
    "Insecta.Coleoptera.Elateridae..",
    "Ambiguous....",
    "Background....",
]


def _ann(tuboid_id: str, dt: float, user: str = "alice", family: str = "Muscidae") -> TuboidAnnotation:
    return TuboidAnnotation(tuboid_id, user, "Insecta", "Diptera", family, "", "", None, None, None, dt)


def test_real_database():
    path = stickypi_path("itc", "database.db")
    before = path.read_bytes()
    rows = read_annotations(path)
    assert path.read_bytes() == before  # read-only
    assert len(rows) == 9
    assert {r.user for r in rows} == {"qgeissmann"}
    assert [r.taxon for r in rows] == REAL_TAXA
    assert sum(r.is_ambiguous for r in rows) == 1
    assert all(r.extra is None and r.confidence is None and r.notes is None for r in rows)
    assert all(1603843200 <= r.datetime < 1603929600 for r in rows)  # 2020-10-28 UTC
    assert [r.datetime for r in rows] == sorted(r.datetime for r in rows)
    latest = latest_per_tuboid(rows)
    assert len(latest) == 9 and list(latest) == sorted(latest)
    # every annotated tuboid exists in the data folder as <series>/<tuboid>
    for tuboid_id in latest:
        assert stickypi_path("itc", tuboid_id.rsplit(".", 1)[0], tuboid_id).is_dir()


def test_round_trip_new_file_then_append(tmp_path: Path):
    rows = [
        _ann("08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00.0033", 1603870121.80961),
        TuboidAnnotation("x.0001", "bob", "Background", "", "", "", "", "free", 0.75, "a note", 1.5),
    ]
    path = tmp_path / "database.db"
    write_annotations(path, rows)
    assert read_annotations(path) == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["database.db"]  # no temporary left behind
    with sqlite3.connect(path) as conn:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'ANNOTATIONS'").fetchone()
    assert sql == CREATE_TABLE_SQL
    write_annotations(path, rows[:1])
    assert read_annotations(path) == [*rows, rows[0]]


def test_round_trip_of_the_real_rows(tmp_path: Path):
    rows = read_annotations(stickypi_path("itc", "database.db"))
    write_annotations(tmp_path / "copy.db", rows)
    assert read_annotations(tmp_path / "copy.db") == rows


def test_append_creates_the_table_in_an_existing_sqlite_file(tmp_path: Path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a)")
    conn.close()
    write_annotations(path, [_ann("a.0001", 3.0)])
    assert [r.tuboid_id for r in read_annotations(path)] == ["a.0001"]


def test_null_cells_become_empty_strings(tmp_path: Path):
    path = tmp_path / "nulls.db"
    conn = sqlite3.connect(path)
    conn.execute(CREATE_TABLE_SQL)
    conn.execute(
        "INSERT INTO ANNOTATIONS (tuboid_id, user, type, `order`, family, genus, species, datetime) "
        "VALUES ('a.0001', NULL, 'Insecta', 'Diptera', NULL, NULL, NULL, 10)"
    )
    conn.execute("INSERT INTO ANNOTATIONS (tuboid_id, type, datetime) VALUES ('a.0002', NULL, '12.5')")
    conn.commit()
    conn.close()
    first, second = read_annotations(path)
    assert first.taxon == "Insecta.Diptera..." and first.user == ""
    assert (first.family, first.genus, first.species, first.extra, first.confidence) == (
        "",
        "",
        "",
        None,
        None,
    )
    assert second.taxon == "...." and second.datetime == 12.5


def test_read_only_file_is_readable(tmp_path: Path):
    path = tmp_path / "ro.db"
    write_annotations(path, [_ann("a.0001", 1.0)])
    os.chmod(path, stat.S_IRUSR)
    try:
        assert len(read_annotations(path)) == 1
    finally:
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def test_bad_files(tmp_path: Path):
    not_sqlite = tmp_path / "database.db"
    not_sqlite.write_text("tuboid_id,user\n")
    with pytest.raises(FormatError, match="not an SQLite database"):
        read_annotations(not_sqlite)
    with pytest.raises(FormatError, match="not an SQLite database"):
        write_annotations(not_sqlite, [_ann("a.0001", 1.0)])
    assert not_sqlite.read_text() == "tuboid_id,user\n"

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (a)")
    conn.close()
    with pytest.raises(FormatError, match="no table ANNOTATIONS"):
        read_annotations(other)

    wrong = tmp_path / "wrong.db"
    with sqlite3.connect(wrong) as conn:
        conn.execute("CREATE TABLE ANNOTATIONS (tuboid_id TEXT, datetime REAL)")
    conn.close()
    with pytest.raises(FormatError, match="cannot read table ANNOTATIONS"):
        read_annotations(wrong)

    bad_rows = tmp_path / "bad_rows.db"
    with sqlite3.connect(bad_rows) as conn:
        conn.execute(CREATE_TABLE_SQL)
        conn.execute("INSERT INTO ANNOTATIONS (tuboid_id, datetime) VALUES ('a.0001', 'yesterday')")
    conn.close()
    with pytest.raises(FormatError, match=r"a\.0001.*must be finite numbers"):
        read_annotations(bad_rows)

    with pytest.raises(FileNotFoundError):
        read_annotations(tmp_path / "missing.db")


def test_latest_per_tuboid_latest_wins_whoever_annotated():
    rows = [
        _ann("t.0001", 10.0, user="alice", family="Muscidae"),
        _ann("t.0001", 30.0, user="bob", family="Culicidae"),
        _ann("t.0001", 20.0, user="alice", family="Sciaridae"),
        _ann("t.0002", 5.0, user="carol", family="Muscidae"),
        _ann("t.0002", 5.0, user="dave", family="Psychodidae"),  # tie: the later row wins
    ]
    latest = latest_per_tuboid(rows)
    assert list(latest) == ["t.0001", "t.0002"]
    assert (latest["t.0001"].user, latest["t.0001"].family) == ("bob", "Culicidae")
    assert (latest["t.0002"].user, latest["t.0002"].family) == ("dave", "Psychodidae")
    assert latest_per_tuboid([]) == {}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_row_with_a_nan_or_infinite_datetime_is_refused_not_latest(tmp_path: Path, value: str):
    # NaN compares false both ways: first in the table it would stay "latest" against every later correction
    path = tmp_path / "nan.db"
    with sqlite3.connect(path) as conn:
        conn.execute(CREATE_TABLE_SQL)
        conn.execute(f"INSERT INTO ANNOTATIONS (tuboid_id, type, datetime) VALUES ('a.0001', 'Insecta', {value!r})")
        conn.execute("INSERT INTO ANNOTATIONS (tuboid_id, type, datetime) VALUES ('a.0001', 'Insecta', 1600000000)")
    conn.close()
    with pytest.raises(FormatError, match=r"row 1 \(a\.0001\): datetime .* must be finite numbers"):
        read_annotations(path)
