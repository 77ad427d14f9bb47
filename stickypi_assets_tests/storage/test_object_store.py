"""Object store behaviour, run identically against the local folder and a real S3 server on loopback.

The same suite runs on both backends because the platform promises that switching ``STICKYPI_STORE_URL``
from a folder to a bucket changes nothing else. Local-only tests cover what S3 gives for free (atomic
replacement under crashes and concurrent writers); S3-only tests cover metadata, prefixes and batching.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.request import url2pathname

import pytest

from stickypi_assets.storage import object_store as object_store_module
from stickypi_assets.storage.object_store import (
    InvalidKey,
    LocalObjectStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    S3ObjectStore,
    object_store_from_url,
    validate_key,
    validate_prefix,
)
from stickypi_assets_tests.storage.s3_server import S3Endpoint

MiB = 1024 * 1024
SECRET = "wJalrXUtnFEMI-very-secret-key"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".tmp-")]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each behaviour test runs on both backends; S3 under a key prefix, to exercise prefix handling too."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
    return endpoint.store(prefix="stickypi", multipart_threshold=5 * MiB)


def put_tree(store: ObjectStore, keys: list[str]) -> dict[str, bytes]:
    contents = {key: f"content of {key}".encode() for key in keys}
    for key, data in contents.items():
        store.put_bytes(key, data)
    return contents


# -- behaviour shared by both backends ---------------------------------------------------------------------


def test_put_get_round_trip(store: ObjectStore):
    data = bytes(range(256)) * 10
    before = datetime.now(UTC) - timedelta(seconds=5)
    info = store.put_bytes("raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_12-00-00.jpg", data)
    assert isinstance(info, ObjectInfo)
    assert (info.key, info.size, info.md5) == (
        "raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_12-00-00.jpg",
        len(data),
        md5(data),
    )
    assert info.last_modified.utcoffset() == timedelta(0)
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert store.get_bytes(info.key) == data
    # empty objects (a truncated field upload) and unusual but valid names survive too
    assert store.put_bytes("raw_images/bad|name/ü x.jpg", b"").size == 0
    assert store.get_bytes("raw_images/bad|name/ü x.jpg") == b""


def test_overwrite_replaces_and_refreshes_md5(store: ObjectStore):
    store.put_bytes("a/b.bin", b"first!")
    assert store.stat("a/b.bin").md5 == md5(b"first!")
    info = store.put_bytes("a/b.bin", b"second")  # same size: a stale md5 cache would not notice
    assert info.md5 == md5(b"second")
    assert store.get_bytes("a/b.bin") == b"second"
    assert store.stat("a/b.bin").md5 == md5(b"second")
    assert [i.md5 for i in store.list("a/")] == [md5(b"second")]


def test_stat_and_exists(store: ObjectStore):
    data = os.urandom(1000)
    store.put_bytes("cards/x/y.bin", data)
    info = store.stat("cards/x/y.bin")
    assert (info.key, info.size, info.md5) == ("cards/x/y.bin", 1000, md5(data))
    assert info.last_modified.tzinfo is not None and info.last_modified.utcoffset() == timedelta(0)
    assert store.exists("cards/x/y.bin")
    assert not store.exists("cards/x/z.bin")
    assert not store.exists("cards/x")  # a folder is not an object


def test_list_is_recursive_sorted_and_prefix_filtered(store: ObjectStore):
    keys = ["r/b", "r/a/1", "s/x", "r/a.d", "rz", "r/a/b/2", "r/a-c/3"]
    contents = put_tree(store, keys)
    # S3 order is UTF-8 byte order: '-' (2D) < '.' (2E) < '/' (2F)
    assert [i.key for i in store.list("r/")] == ["r/a-c/3", "r/a.d", "r/a/1", "r/a/b/2", "r/b"]
    assert [i.key for i in store.list("r/a")] == ["r/a-c/3", "r/a.d", "r/a/1", "r/a/b/2"]
    assert [i.key for i in store.list("r")] == ["r/a-c/3", "r/a.d", "r/a/1", "r/a/b/2", "r/b", "rz"]
    assert [i.key for i in store.list()] == sorted(keys)
    assert list(store.list("nothing/")) == []
    for info in store.list():
        assert (info.size, info.md5) == (len(contents[info.key]), md5(contents[info.key]))
        stat = store.stat(info.key)
        assert (stat.key, stat.size, stat.md5) == (info.key, info.size, info.md5)


def test_list_prefixes(store: ObjectStore):
    put_tree(store, ["r/a/1", "r/a/b/2", "r/a-c/3", "r/top", "s/x", "rz"])
    assert store.list_prefixes() == ["r/", "s/"]
    assert store.list_prefixes("r/") == ["r/a-c/", "r/a/"]
    assert store.list_prefixes("r/a") == ["r/a-c/", "r/a/"]
    assert store.list_prefixes("r/a/") == ["r/a/b/"]
    assert store.list_prefixes("nothing/") == []
    # a folder whose objects were all deleted is no longer a prefix (S3 semantics)
    assert store.delete_prefix("r/a/") == 2
    assert store.list_prefixes("r/") == ["r/a-c/"]


def test_delete_is_idempotent(store: ObjectStore):
    store.put_bytes("a/b", b"x")
    store.delete("a/b")
    assert not store.exists("a/b")
    store.delete("a/b")  # again: no error
    store.delete("never/existed")
    assert list(store.list()) == []


def test_delete_prefix_counts_and_spares_the_rest(store: ObjectStore):
    put_tree(store, ["d/1", "d/2/3", "d/2/4", "dz", "e/1"])
    assert store.delete_prefix("d/") == 3
    assert [i.key for i in store.list()] == ["dz", "e/1"]
    assert store.delete_prefix("d/") == 0
    with pytest.raises(InvalidKey, match="whole store"):
        store.delete_prefix("")
    assert len(list(store.list())) == 2


def test_missing_object_errors_name_the_key(store: ObjectStore, tmp_path: Path):
    key = "raw_images/0a5bb6f4/missing.jpg"
    for call in (store.get_bytes, store.stat, lambda k: store.download(k, tmp_path / "out" / "x.jpg")):
        with pytest.raises(ObjectNotFound) as caught:
            call(key)
        assert key in str(caught.value)
        assert not str(caught.value).startswith("'")  # readable, not KeyError's repr of the message
        assert isinstance(caught.value, KeyError) and isinstance(caught.value, ObjectStoreError)
        assert caught.value.key == key
        assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)  # crosses process pools
    assert not (tmp_path / "out" / "x.jpg").exists()
    assert temp_files(tmp_path) == []


BAD_KEYS = [
    "",
    "/abs/path",
    "a/../b",
    "..",
    "a/./b",
    "a\\b",
    "a//b",
    "a\nb",
    "a\x00b",
    "a\x7fb",
    "a/",
    ".tmp-123",
    "a/.tmp-123",
    "x" * 1025,
    "a/" + "y" * 256,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_invalid_keys_are_rejected_everywhere(store: ObjectStore, key: str, tmp_path: Path):
    operations = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.stat(key),
        lambda: store.delete(key),
        lambda: store.download(key, tmp_path / "dl"),
    ]
    for operation in operations:
        with pytest.raises(InvalidKey):
            operation()
    with pytest.raises(ValueError):  # InvalidKey is also a ValueError
        validate_key(key)
    assert list(store.list()) == []


def test_download_is_atomic(store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = os.urandom(3 * MiB)
    store.put_bytes("v/video.mp4", data)
    dest = tmp_path / "downloads" / "nested" / "video.mp4"
    assert store.download("v/video.mp4", dest) == dest
    assert dest.read_bytes() == data
    # a failed download (here: the disk refuses fsync after the bytes were written) leaves dest as it was
    store.put_bytes("v/video.mp4", b"new content")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(object_store_module.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="simulated"):
        store.download("v/video.mp4", dest)
    monkeypatch.undo()
    assert dest.read_bytes() == data
    assert temp_files(dest.parent) == []
    # a missing key leaves it alone too
    with pytest.raises(ObjectNotFound):
        store.download("v/missing.mp4", dest)
    assert dest.read_bytes() == data and temp_files(dest.parent) == []
    store.download("v/video.mp4", dest)
    assert dest.read_bytes() == b"new content"


def test_put_file_of_a_large_file_reports_the_true_md5(store: ObjectStore, tmp_path: Path):
    data = os.urandom(20 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    expected = md5(data)
    info = store.put_file("exports/big.bin", src)
    assert (info.size, info.md5) == (len(data), expected)
    assert store.stat("exports/big.bin").md5 == expected
    assert [(i.key, i.md5) for i in store.list("exports/")] == [("exports/big.bin", expected)]
    if isinstance(store, S3ObjectStore):  # it really was a multipart upload, whose ETag is not an MD5
        head = store.client.head_object(Bucket=store.bucket, Key="stickypi/exports/big.bin")
        assert "-" in head["ETag"]
    out = store.download("exports/big.bin", tmp_path / "copy.bin")
    assert md5(out.read_bytes()) == expected


def test_uri_and_describe(store: ObjectStore):
    text = store.describe() + repr(store) + store.uri("a/b.jpg")
    assert SECRET not in text and "testing-secret-key" not in text
    if isinstance(store, LocalObjectStore):
        uri = store.uri("a/b c.jpg")
        assert uri.startswith("file:///")
        assert Path(url2pathname(uri[len("file://") :])) == store.local_path("a/b c.jpg")
    else:
        assert store.uri("a/b.jpg") == f"s3://{store.bucket}/stickypi/a/b.jpg"


# -- local folder: atomicity that S3 provides by itself -----------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


@pytest.mark.parametrize("crash", ["mid-write", "before-rename"])
def test_local_crash_leaves_old_object_and_no_partial(
    local: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: str
):
    local.put_bytes("a/b.bin", b"old content")
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(3 * MiB))

    if crash == "mid-write":

        def half_then_crash(path: Path):
            yield b"\x00" * MiB
            raise OSError(28, "simulated: no space left on device")

        monkeypatch.setattr(object_store_module, "_iter_file_chunks", half_then_crash)
    else:

        def refuse_replace(src: object, dst: object, **kwargs: object) -> None:
            raise OSError(5, "simulated: crash before rename")

        monkeypatch.setattr(object_store_module.os, "replace", refuse_replace)

    with pytest.raises(OSError, match="simulated"):
        local.put_file("a/b.bin", src)
    with pytest.raises(OSError, match="simulated"):
        local.put_file("c/new.bin", src)
    monkeypatch.undo()

    assert local.get_bytes("a/b.bin") == b"old content"
    assert local.stat("a/b.bin").md5 == md5(b"old content")
    assert not local.exists("c/new.bin")
    assert [i.key for i in local.list()] == ["a/b.bin"]
    assert local.list_prefixes() == ["a/"]  # the folder created for c/new.bin holds no object
    assert temp_files(local.root) == []


def test_local_leftovers_of_a_killed_writer_are_invisible(local: LocalObjectStore):
    """A SIGKILLed writer cannot clean up: its temp file must never look like an object."""
    local.put_bytes("d/real.bin", b"real")
    (local.root / "d" / ".tmp-deadbeef").write_bytes(b"partial")
    (local.root / "e").mkdir()
    (local.root / "e" / ".tmp-cafebabe").write_bytes(b"partial")
    assert [i.key for i in local.list()] == ["d/real.bin"]
    assert local.list_prefixes() == ["d/"]
    assert local.delete_prefix("d/") == 1
    # sweeping: recent temp files (maybe an in-flight write) are kept, old ones removed
    assert local.remove_stale_temp_files() == 0
    old = time.time() - 7200
    for p in temp_files(local.root):
        os.utime(p, (old, old))
    assert local.remove_stale_temp_files() == 2
    assert temp_files(local.root) == []


def test_local_concurrent_writers_end_with_one_complete_value(local: LocalObjectStore):
    values = [bytes([i]) * MiB for i in range(8)]
    local.put_bytes("k/shared.bin", values[0])
    stop = threading.Event()
    bad_reads: list[int] = []
    errors: list[BaseException] = []

    def writer(value: bytes) -> None:
        try:
            for _ in range(5):
                local.put_bytes("k/shared.bin", value)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            data = local.get_bytes("k/shared.bin")
            if data not in values:
                bad_reads.append(len(data))

    threads = [threading.Thread(target=writer, args=(v,)) for v in values]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == [] and bad_reads == []
    final = local.get_bytes("k/shared.bin")
    assert final in values
    assert local.stat("k/shared.bin").md5 == md5(final)
    assert temp_files(local.root) == []


def test_local_object_and_folder_cannot_share_a_name(local: LocalObjectStore):
    local.put_bytes("a", b"object")
    with pytest.raises(ObjectStoreError, match="is a file"):
        local.put_bytes("a/b", b"x")
    local.put_bytes("x/y", b"object")
    with pytest.raises(ObjectStoreError, match="folder"):
        local.put_bytes("x", b"x")
    assert local.get_bytes("a") == b"object" and local.get_bytes("x/y") == b"object"
    assert temp_files(local.root) == []


def test_local_path_and_files_written_outside_the_store(local: LocalObjectStore):
    """Files copied into the folder by hand (rsync from a device) are objects like any other."""
    assert local.local_path("raw_images/x.jpg") == local.root / "raw_images" / "x.jpg"
    (local.root / "raw_images").mkdir()
    (local.root / "raw_images" / "x.jpg").write_bytes(b"jpeg")
    assert local.stat("raw_images/x.jpg").md5 == md5(b"jpeg")
    with pytest.raises(InvalidKey):
        local.local_path("../outside")


# -- S3 specifics -------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_prefixes_isolate_stores_in_one_bucket(s3_endpoint: S3Endpoint):
    a, b, whole = s3_endpoint.store("site-a"), s3_endpoint.store("/site-b/"), s3_endpoint.store()
    a.put_bytes("x/1", b"a")
    b.put_bytes("x/1", b"b")
    assert a.get_bytes("x/1") == b"a" and b.get_bytes("x/1") == b"b"
    assert [i.key for i in a.list()] == ["x/1"]
    assert a.list_prefixes() == ["x/"]
    assert whole.list_prefixes() == ["site-a/", "site-b/"]
    assert a.delete_prefix("x/") == 1
    assert b.exists("x/1")


@pytest.mark.s3
def test_s3_md5_of_objects_written_by_other_tools(s3_endpoint: S3Endpoint, tmp_path: Path):
    store, client = s3_endpoint.store(), s3_endpoint.client()
    client.put_object(Bucket=s3_endpoint.bucket, Key="plain.bin", Body=b"plain")  # no md5 metadata
    assert store.stat("plain.bin").md5 == md5(b"plain")
    src = tmp_path / "multi.bin"
    src.write_bytes(os.urandom(11 * MiB))
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=5 * MiB)
    client.upload_file(str(src), s3_endpoint.bucket, "multi.bin", Config=config)
    # documented fallback: the multipart ETag, recognisably not an MD5, but still a content fingerprint
    assert "-" in store.stat("multi.bin").md5
    assert {i.key: "-" in i.md5 for i in store.list()} == {"multi.bin": True, "plain.bin": False}


@pytest.mark.s3
def test_s3_delete_prefix_batches(s3_endpoint: S3Endpoint):
    store = s3_endpoint.store()
    store.delete_batch_size = 3  # the real limit is 1000; a small batch shows the batching
    put_tree(store, [f"batch/{i:02d}" for i in range(7)] + ["keep/1"])
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3.DeleteObjects", lambda **kwargs: calls.append("call"))
    assert store.delete_prefix("batch/") == 7
    assert len(calls) == 3
    assert [i.key for i in store.list()] == ["keep/1"]


@pytest.mark.s3
def test_s3_content_type_is_stored(s3_endpoint: S3Endpoint, tmp_path: Path):
    store = s3_endpoint.store()
    store.put_bytes("t/p.parquet", b"PAR1", content_type="application/vnd.apache.parquet")
    (tmp_path / "img.jpg").write_bytes(b"\xff\xd8\xff")
    store.put_file("t/img.jpg", tmp_path / "img.jpg")

    def content_type(key: str) -> str:
        return store.client.head_object(Bucket=s3_endpoint.bucket, Key=key)["ContentType"]

    assert content_type("t/p.parquet") == "application/vnd.apache.parquet"
    assert content_type("t/img.jpg") == "image/jpeg"


@pytest.mark.s3
def test_s3_missing_bucket_is_a_clear_error(s3_endpoint: S3Endpoint):
    store = S3ObjectStore("no-such-bucket", **s3_endpoint.store_kwargs())
    with pytest.raises(ObjectStoreError, match="no-such-bucket.*does not exist") as caught:
        store.put_bytes("a", b"x")
    assert not isinstance(caught.value, ObjectNotFound)
    with pytest.raises(ObjectStoreError, match="does not exist"):
        list(store.list())


@pytest.mark.s3
def test_s3_store_from_url_uses_the_environment(s3_endpoint: S3Endpoint):
    """The way the Dagster resource builds it: URL + endpoint, credentials from the environment only."""
    store = object_store_from_url(f"{s3_endpoint.url}/season-2020", endpoint_url=s3_endpoint.endpoint_url)
    assert isinstance(store, S3ObjectStore) and store.prefix == "season-2020/"
    store.put_bytes("a.txt", b"hi")
    assert s3_endpoint.store().get_bytes("season-2020/a.txt") == b"hi"


def test_s3_describe_and_uri_never_show_credentials():
    store = S3ObjectStore(
        "bucket",
        prefix="p",
        endpoint_url=f"https://user:{SECRET}@minio.example.org:9000/?token={SECRET}",
        region_name="eu-west-2",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=SECRET,
    )
    for text in (store.describe(), repr(store), store.uri("k"), str(vars(store))):
        assert SECRET not in text
        assert "AKIAEXAMPLE" not in text
    assert store.describe() == "S3 bucket s3://bucket/p/ at https://minio.example.org:9000/ (eu-west-2)"
    assert store.uri("a/b.jpg") == "s3://bucket/p/a/b.jpg"


# -- construction and validation ----------------------------------------------------------------------------


def test_object_store_from_url(tmp_path: Path):
    local = object_store_from_url((tmp_path / "a").as_uri(), endpoint_url=None, region_name=None)
    assert isinstance(local, LocalObjectStore) and local.root == (tmp_path / "a").resolve()
    plain = object_store_from_url(str(tmp_path / "b"))
    assert isinstance(plain, LocalObjectStore) and plain.root.is_dir()
    s3 = object_store_from_url("s3://my-bucket/some/prefix/", region_name="us-east-1")
    assert isinstance(s3, S3ObjectStore)
    assert (s3.bucket, s3.prefix) == ("my-bucket", "some/prefix/")
    assert object_store_from_url("s3://my-bucket").prefix == ""  # type: ignore[attr-defined]
    for bad in ("", "gs://bucket/x", "s3:///prefix", "file://otherhost/x"):
        with pytest.raises(ValueError):
            object_store_from_url(bad)
    with pytest.raises(ValueError, match="credentials") as caught:
        object_store_from_url(f"s3://AKIA:{SECRET}@bucket/x")
    assert SECRET not in str(caught.value)


def test_validate_key_and_prefix():
    for key in ("a", "raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_12-00-00.jpg", "a/.hidden", "a b/ü|x.jpg"):
        assert validate_key(key) == key
    for prefix in ("", "raw_images/", "raw_images/0a", "a/..b"):
        assert validate_prefix(prefix) == prefix
    for prefix in ("/x", "../", "a/../b/", "a//", "a\\b/", "a/.tmp-x/"):
        with pytest.raises(InvalidKey):
            validate_prefix(prefix)
    with pytest.raises(InvalidKey, match="ends with '/'"):
        validate_key("raw_images/")
