from datetime import UTC, datetime

import pytest

from stickypi_assets.formats.names import (
    ImageName,
    InvalidImageName,
    format_datetime,
    parse_image_name,
    parse_stem,
    validate_device,
)
from stickypi_assets.formats.split import md5_file, split_for_md5
from stickypi_assets_tests.conftest import stickypi_path


def test_reference_example():
    name = parse_image_name("1b74105a.2020-07-05_10-07-16.jpg")
    assert name == ImageName("1b74105a", datetime(2020, 7, 5, 10, 7, 16, tzinfo=UTC))
    assert name.stem == "1b74105a.2020-07-05_10-07-16"
    assert name.filename() == "1b74105a.2020-07-05_10-07-16.jpg"


def test_object_keys_and_extension_case():
    assert parse_image_name("raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_20-19-15.JPG").device == "0a5bb6f4"
    assert parse_image_name("x/0a5bb6f4.2020-06-20_20-19-15.svg", ext="svg").datetime.hour == 20


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("0a5bb6f4.jpg", "three dot-separated fields"),
        ("0a5bb6f4.2020-06-20_20-19-15.extra.jpg", "three dot-separated fields"),
        ("0a5bb6f.2020-06-20_20-19-15.jpg", "8 hexadecimal digits"),
        ("0a5bb6fz.2020-06-20_20-19-15.jpg", "8 hexadecimal digits"),
        ("dev|1,[].2020-06-20_20-19-15.jpg", "8 hexadecimal digits"),
        ("0a5bb6f4.2020-06-20 20:19:15.jpg", "YYYY-MM-DD_HH-MM-SS"),
        ("0a5bb6f4.2020-13-20_20-19-15.jpg", "not a real calendar date"),
        ("0a5bb6f4.2020-06-20_25-19-15.jpg", "not a real calendar date"),
        ("0a5bb6f4.2018-06-20_20-19-15.jpg", "before 2019-11-01"),
        ("0a5bb6f4.2020-06-20_20-19-15.png", "extension '.jpg'"),
    ],
)
def test_bad_names_have_clear_errors(name, message):
    with pytest.raises(InvalidImageName, match=message.replace("|", r"\|").replace("[", r"\[")):
        parse_image_name(name)


def test_validate_device_rejects_partition_breaking_characters():
    for bad in ["", "abc|defg", "a,b", "[0000000]", "0a5bb6f4 "]:
        with pytest.raises(InvalidImageName):
            validate_device(bad)


def test_format_roundtrip_and_naive_is_utc():
    dt = datetime(2020, 6, 20, 21, 33, 24)
    assert format_datetime(dt) == "2020-06-20_21-33-24"
    assert parse_stem("5c173ff2." + format_datetime(dt)).datetime == dt.replace(tzinfo=UTC)


def test_every_real_file_name_parses():
    raw = sorted(stickypi_path("raw").rglob("*.jpg"))
    svgs = sorted(stickypi_path("uid").glob("*.svg"))
    assert len(raw) == 8 and len(svgs) == 15
    for path in raw:
        name = parse_image_name(path.name)
        assert name.device == path.parent.name
    devices = {parse_image_name(p.name, ext="svg").device for p in svgs}
    assert devices == {"08038ade", "0a5bb6f4", "15e612cd", "398948ee", "5595c586", "afbd6f68", "e086a015"}


def test_md5_split_rule_matches_reference():
    assert split_for_md5("bf" + "0" * 30) == "validation"  # 'bf...' > 'bf'
    assert split_for_md5("be" + "f" * 30) == "train"
    assert split_for_md5("c0" + "0" * 30) == "validation"
    assert split_for_md5("0" * 32) == "train"
    raw = stickypi_path("raw", "5c173ff2", "5c173ff2.2020-06-20_21-33-24.jpg")
    assert md5_file(raw) == "9e6e908d9c29d332b511f8d5121857f8"  # reference 9.1 (used in API tests)
