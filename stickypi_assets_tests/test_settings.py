"""Every STICKYPI_* variable is a Settings field, documented in the README, and read nowhere else."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from stickypi_assets.ml.stages import STAGES
from stickypi_assets.settings import VARIABLES, Settings
from stickypi_assets_tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "stickypi_assets"


def _expanded(names) -> set[str]:
    out = set()
    for name in names:
        out |= {name.replace("<STAGE>", s.upper()) for s in STAGES} if "<STAGE>" in name else {name}
    return out


def test_the_readme_documents_exactly_the_variables_settings_reads():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(STICKYPI_[A-Z0-9_]+)` \|", table, re.M))
    assert documented == _expanded(VARIABLES)


def test_no_module_but_settings_reads_a_stickypi_variable():
    readers = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "settings.py" and path.parent == PACKAGE:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"environ(\.get)?\s*[\[(]\s*[\"']STICKYPI_", text) or re.search(r"getenv\([\"']STICKYPI_", text):
            readers.append(str(path.relative_to(REPO_ROOT)))
    assert readers == []


def test_defaults_and_every_field_from_the_environment(tmp_path: Path):
    default = Settings.from_env({})
    assert default.data_root == Path("stickypi-data").resolve() and default.store_url.endswith("stickypi-data/store")
    assert (default.promotion_tolerance, default.auto_refresh_days, default.px_per_mm) == (0.0, 7, None)
    assert default.model_bundles == {} and default.start_date == date(2020, 1, 1) and default.end_date is None
    env = {
        "STICKYPI_DATA_ROOT": str(tmp_path), "STICKYPI_STORE_URL": "s3://b/p", "STICKYPI_S3_ENDPOINT_URL": "http://x",
        "STICKYPI_S3_REGION": "eu", "STICKYPI_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"),
        "STICKYPI_PUBLISHED_PATH": str(tmp_path / "p.duckdb"), "STICKYPI_START_DATE": "2021-03-04",
        "STICKYPI_END_DATE": "2021-09-30",
        "STICKYPI_UID_BUNDLE": str(tmp_path / "uid"), "STICKYPI_PX_PER_MM": "15.5",
        "STICKYPI_PROMOTION_TOLERANCE": "0.02", "STICKYPI_AUTO_REFRESH_DAYS": "0",
        "STICKYPI_MAX_IMAGE_PIXELS": "1000", "STICKYPI_MAX_OBJECT_BYTES": "2048", "STICKYPI_S3_CONNECT_TIMEOUT": "1.5",
        "STICKYPI_S3_READ_TIMEOUT": "2.5", "STICKYPI_S3_MAX_ATTEMPTS": "3", "STICKYPI_RETRAIN_EVERY_N": "25",
        "STICKYPI_AL_IMAGE_BUDGET": "40", "STICKYPI_AL_TUBOID_BUDGET": "0", "STICKYPI_AL_PASSES": "5",
        "STICKYPI_AL_IMAGE_MIX": "random:1", "STICKYPI_AL_TUBOID_MIX": "bald:1",
    }  # fmt: skip
    assert set(env) == _expanded(VARIABLES) - {f"STICKYPI_{s.upper()}_BUNDLE" for s in STAGES if s != "uid"}
    s = Settings.from_env(env)
    assert (s.data_root, s.store_url, s.s3_endpoint_url, s.s3_region) == (tmp_path, "s3://b/p", "http://x", "eu")
    assert (s.warehouse_path, s.published_path) == (tmp_path / "w.duckdb", tmp_path / "p.duckdb")
    assert (s.start_date, s.px_per_mm, s.promotion_tolerance, s.auto_refresh_days) == (date(2021, 3, 4), 15.5, 0.02, 0)
    assert s.end_date == date(2021, 9, 30)
    assert s.model_bundles == {"uid": tmp_path / "uid"} and s.ml_cache == tmp_path / "ml-cache"
    assert (s.max_image_pixels, s.max_object_bytes) == (1000, 2048)
    assert (s.s3_connect_timeout, s.s3_read_timeout, s.s3_max_attempts) == (1.5, 2.5, 3)
    assert (s.retrain_every_n, s.al_image_budget, s.al_tuboid_budget, s.al_passes) == (25, 40, 0, 5)
    assert (s.al_image_mix, s.al_tuboid_mix) == ("random:1", "bald:1")
    assert (default.retrain_every_n, default.al_image_budget, default.al_passes) == (1, 20, 10)


@pytest.mark.parametrize(
    "name, value",
    [("STICKYPI_START_DATE", "June"), ("STICKYPI_END_DATE", "2021-13-01"), ("STICKYPI_PX_PER_MM", "0"),
     ("STICKYPI_PX_PER_MM", "big"),
     ("STICKYPI_PROMOTION_TOLERANCE", "-0.1"), ("STICKYPI_AUTO_REFRESH_DAYS", "1.5"),
     ("STICKYPI_AUTO_REFRESH_DAYS", "-2"), ("STICKYPI_MAX_IMAGE_PIXELS", "0"), ("STICKYPI_MAX_OBJECT_BYTES", "1e3"),
     ("STICKYPI_S3_READ_TIMEOUT", "0"), ("STICKYPI_S3_CONNECT_TIMEOUT", "-1"), ("STICKYPI_S3_MAX_ATTEMPTS", "0"),
     ("STICKYPI_RETRAIN_EVERY_N", "0"), ("STICKYPI_AL_PASSES", "1"), ("STICKYPI_AL_IMAGE_BUDGET", "-1")],
)  # fmt: skip
def test_a_bad_value_names_its_variable(name: str, value: str):
    with pytest.raises(ValueError, match=f"{name}='{re.escape(value)}' must be"):
        Settings.from_env({name: value})


def test_the_end_date_is_not_before_the_start_date():
    with pytest.raises(ValueError, match="STICKYPI_END_DATE='2020-06-19' must not be before STICKYPI_START_DATE"):
        Settings.from_env({"STICKYPI_START_DATE": "2020-06-20", "STICKYPI_END_DATE": "2020-06-19"})
    assert Settings.from_env({"STICKYPI_START_DATE": "2020-06-20", "STICKYPI_END_DATE": "2020-06-20"}).end_date


def test_an_endpoint_password_is_not_in_the_settings_repr():
    s = Settings.from_env({"STICKYPI_S3_ENDPOINT_URL": "http://user:s3cr3t@127.0.0.1:9000"})
    assert s.s3_endpoint_url == "http://user:s3cr3t@127.0.0.1:9000" and "s3cr3t" not in repr(s)
