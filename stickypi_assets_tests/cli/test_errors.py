"""What a new user meets when something goes wrong: one-line errors, exit 2 for usage and 1 for data errors, no
traceback unless ``-v``, help on every option, and integers printed as integers."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from stickypi_assets.cli import build_parser, main
from stickypi_assets.cli.common import DataError, UsageError, exit_code_and_message
from stickypi_assets.storage.keys import raw_image_key

DEVICE = "0a5bb6f4"
DAY = date(2021, 1, 1)


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> Path:
    """An empty platform under ``tmp_path/data`` (nothing indexed, no warehouse yet)."""
    monkeypatch.setenv("STICKYPI_DATA_ROOT", str(tmp_path / "data"))
    for name in ("STICKYPI_STORE_URL", "STICKYPI_WAREHOUSE_PATH", "STICKYPI_PUBLISHED_PATH", "STICKYPI_START_DATE",
                 "DAGSTER_HOME"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


@pytest.fixture
def indexed(env: Path, capsys) -> Path:
    """Two JPEGs of ``DEVICE`` on ``DAY`` indexed into table ``images`` (and published)."""
    store = env / "store"
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(64, 48), (80, 60)]):
        ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        path = store / raw_image_key(DEVICE, f"{DEVICE}.{DAY}_10-0{i}-00")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg.tobytes())
    assert main(["images", "index", "--device", DEVICE, "--date", str(DAY)]) == 0
    assert "2 images (2 ok" in capsys.readouterr().out
    return env


def error_line(err: str) -> str:
    """The one line an error prints (and check it is the only one, with no traceback)."""
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("stickypi: error: "), err
    return err.strip()


# -- help -----------------------------------------------------------------------------------------------------


def _walk(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # the one-line help of each sub-command in the listing
                yield f"{path} {choice.dest}", choice
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")


def test_every_option_and_argument_of_every_command_has_help() -> None:
    seen = list(_walk(build_parser(), "stickypi"))
    missing = [(where, a.option_strings or a.dest) for where, a in seen
               if not (a.help or "").strip() or a.help == argparse.SUPPRESS]  # fmt: skip
    assert not missing
    commands = {where for where, _ in seen}
    assert {"stickypi models promote", "stickypi warehouse sql", "stickypi images index"} <= commands


def test_usage_errors_of_the_parser_are_one_line_exit_2(capsys) -> None:
    assert main(["uid", "predict-dir"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "uid predict-dir: the following arguments are required: -t/--target" in line
    assert "see 'stickypi uid predict-dir --help'" in line
    assert main(["no-such-command"]) == 2
    assert "invalid choice: 'no-such-command'" in error_line(capsys.readouterr().err)
    assert main(["--help"]) == 0 and "Exit status" in capsys.readouterr().out


# -- warehouse sql ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELEC count(*) FROM images", 'query failed: Parser Error: syntax error at or near "SELEC"'),
        ("SELECT * FROM no_such_table", "query failed: Catalog Error: Table with name no_such_table does not exist"),
        ("DELETE FROM images", "read-only mode! (`stickypi warehouse sql` runs read queries only)"),
    ],
)
def test_sql_errors_are_one_line_exit_1(indexed: Path, capsys, sql: str, says: str) -> None:
    assert main(["warehouse", "sql", sql]) == 1
    captured = capsys.readouterr()
    assert says in error_line(captured.err) and captured.out == ""
    assert main(["warehouse", "sql", "SELECT count(*) AS n FROM images"]) == 0  # nothing was deleted
    assert capsys.readouterr().out.split() == ["n", "2"]


def test_verbose_shows_the_traceback_before_the_same_line(indexed: Path, capsys) -> None:
    for argv in (["-v", "warehouse", "sql", "SELEC 1"], ["warehouse", "sql", "SELEC 1", "-v"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("Traceback") and "duckdb" in err.lower()
        assert err.splitlines()[-1] == 'stickypi: error: query failed: Parser Error: syntax error at or near "SELEC"'


def test_counts_and_sums_print_as_integers(indexed: Path, capsys) -> None:
    sql = ("SELECT count(*) AS n, sum(width) AS total_width, sum(width) FILTER (WHERE width > 1000) AS none_wide, "
           "avg(width) AS mean_width, 2.0::DOUBLE AS two FROM images")  # fmt: skip
    assert main(["warehouse", "sql", sql]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["n", "total_width", "none_wide", "mean_width", "two"]
    assert row.split() == ["2", "144", "<NA>", "72.0", "2.0"]  # sum() is HUGEINT: 144, not 144.0; floats stay
    assert main(["warehouse", "sql", "--writer", "SELECT sum(height) AS h FROM images"]) == 0
    assert capsys.readouterr().out.split() == ["h", "108"]
    assert main(["warehouse", "sql", "SELECT 1 AS a; SELECT 2.5 AS b"]) == 0  # not describable: printed as is
    assert capsys.readouterr().out.split() == ["b", "2.5"]


def test_sql_before_any_warehouse_is_a_data_error(env: Path, capsys) -> None:
    assert main(["warehouse", "sql", "SELECT 1"]) == 1
    assert "no published warehouse copy yet" in error_line(capsys.readouterr().err)


def test_a_malformed_setting_is_a_usage_error(env: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("STICKYPI_START_DATE", "yesterday")
    assert main(["warehouse", "sql", "SELECT 1"]) == 2
    assert "STICKYPI_START_DATE='yesterday' must be" in error_line(capsys.readouterr().err)


# -- images index ---------------------------------------------------------------------------------------------


def test_images_index_refuses_a_future_day_and_writes_nothing(env: Path, capsys) -> None:
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    for day in ("2031-01-01", str(tomorrow)):
        assert main(["images", "index", "--device", DEVICE, "--date", day]) == 2
        line = error_line(capsys.readouterr().err)
        assert f"argument --date: {day} is in the future (today is" in line and "no image can exist yet" in line
    assert not env.exists()  # no partition, no warehouse, not even the data root
    assert main(["images", "index", "--device", DEVICE, "--date", "2021-02-30"]) == 2
    assert "'2021-02-30' is not a day YYYY-MM-DD" in error_line(capsys.readouterr().err)
    assert main(["images", "index", "--device", "0A5BB6F4", "--date", "2021-01-01"]) == 2
    assert "device ids are lower-case, '0a5bb6f4'" in error_line(capsys.readouterr().err)


def test_images_index_of_a_day_without_images_says_so(env: Path, capsys) -> None:
    assert main(["images", "index", "--device", DEVICE, "--date", "2021-01-02"]) == 0
    out = capsys.readouterr().out
    assert f"{DEVICE} 2021-01-02: 0 images" in out
    assert f"no images found under raw_images/{DEVICE}/{DEVICE}.2021-01-02_*" in out
    assert "partition is written empty" in out
    assert (env / "store" / "warehouse" / "images" / f"device={DEVICE}" / "date=2021-01-02").is_dir()


# -- predict-dir on missing or empty folders, bundles without weights -------------------------------------------


def test_sim_predict_dir_on_a_missing_or_empty_folder(tmp_path: Path, capsys) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert main(["sim", "predict-dir", "-b", str(bundle), "-t", str(tmp_path / "nope")]) == 1
    assert error_line(capsys.readouterr().err) == f"stickypi: error: no such folder: {tmp_path / 'nope'}"
    (tmp_path / "empty").mkdir()
    assert main(["sim", "predict-dir", "-b", str(bundle), "-t", str(tmp_path / "empty")]) == 1
    assert "no annotation SVGs (<device>.<datetime>.svg) in" in error_line(capsys.readouterr().err)
    assert main(["sim", "predict-dir", "-b", str(tmp_path / "no-bundle"), "-t", str(tmp_path / "empty")]) == 1
    assert error_line(capsys.readouterr().err).endswith(f"no such bundle folder: {tmp_path / 'no-bundle'}")


def test_uid_predict_dir_on_an_empty_folder_has_nothing_to_do(tmp_path: Path, capsys) -> None:
    for argv in (["-n"], ["-b", str(tmp_path)]):
        assert main(["uid", "predict-dir", "-t", str(tmp_path), *argv]) == 1
        captured = capsys.readouterr()
        assert error_line(captured.err) == (
            f"stickypi: error: no JPEG images (*.jpg, *.jpeg) under {tmp_path}: nothing to do"
        )
        assert captured.out == ""


def test_itc_predict_dir_on_an_empty_folder_has_nothing_to_do(tmp_path: Path, capsys) -> None:
    assert main(["itc", "predict-dir", "-b", str(tmp_path), "-t", str(tmp_path)]) == 1
    assert "no tuboid folders (*/metadata.txt) under" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "results.csv").exists()


def test_a_bundle_without_weights_says_how_to_get_them(tmp_path: Path, capsys) -> None:
    from stickypi_assets.ml.uid.config import UidConfig, save_config

    bundle, target = tmp_path / "bundle", tmp_path / "images"
    small = UidConfig(backbone="resnet18_fpn", fpn_channels=32, box_head_dim=64, mask_head_channels=32)
    save_config(small, bundle / "config" / "config.yaml")
    target.mkdir()
    cv2.imwrite(str(target / f"{DEVICE}.2021-01-01_10-00-00.jpg"), np.zeros((32, 32, 3), np.uint8))
    assert main(["uid", "predict-dir", "-b", str(bundle), "-t", str(target)]) == 1
    line = error_line(capsys.readouterr().err)
    assert "has no trained weights" in line and f"`stickypi uid train --bundle-dir {bundle}`" in line
    assert "weights=" not in line


# -- the mapping ----------------------------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_points_at_verbose(env: Path, monkeypatch, capsys) -> None:
    from stickypi_assets.cli import warehouse

    def boom(*args, **kwargs):
        raise RuntimeError("something broke\nacross lines")

    monkeypatch.setattr(warehouse, "_query", boom)
    assert main(["warehouse", "sql", "SELECT 1"]) == 1
    line = error_line(capsys.readouterr().err)
    assert line == ("stickypi: error: unexpected RuntimeError: something broke across lines "
                    "(run with -v for the traceback)")  # fmt: skip
    assert main(["-v", "warehouse", "sql", "SELECT 1"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_exit_codes_of_the_known_errors() -> None:
    import duckdb

    from stickypi_assets.formats.errors import FormatError
    from stickypi_assets.settings import Settings
    from stickypi_assets.storage.object_store import InvalidKey
    from stickypi_assets.storage.warehouse import WarehouseError

    def raised(exc: BaseException) -> BaseException:
        try:
            raise exc
        except BaseException as caught:  # noqa: BLE001 - with its traceback, as run_command sees it
            return caught

    data = [DataError("x"), FileNotFoundError("x"), PermissionError("x"), WarehouseError("x"), FormatError("x"),
            InvalidKey("x"), duckdb.CatalogException("x"), ValueError("raised reading a bundle")]  # fmt: skip
    for exc in data:
        assert exit_code_and_message(raised(exc))[0] == 1, exc
    for exc in (UsageError("x"), FileExistsError("x")):
        assert exit_code_and_message(raised(exc))[0] == 2, exc
    try:
        Settings.from_env({"STICKYPI_AUTO_REFRESH_DAYS": "many"})
    except ValueError as exc:  # raised by the settings: a usage error
        assert exit_code_and_message(exc) == (2, str(exc))
    else:
        pytest.fail("a malformed setting was accepted")
    assert exit_code_and_message(raised(KeyboardInterrupt())) == (130, "interrupted")
