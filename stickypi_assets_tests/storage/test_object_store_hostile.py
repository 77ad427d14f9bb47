"""The object store against hostile inputs: links planted in a local store, an endpoint URL with a password,
an S3 server that never answers, crashed writers' temp files, oversized objects.

Each test is named after the input a hostile (or merely unlucky) environment hands the store, and checks
what must *not* happen: a path leaving the root, a secret reaching a message, a request hanging.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from stickypi_assets.settings import Settings
from stickypi_assets.storage.connect import open_object_store
from stickypi_assets.storage.object_store import (
    InvalidKey,
    LinkRefused,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStoreError,
    ObjectTooLarge,
    S3ObjectStore,
)
from stickypi_assets.storage.redact import redact_url_credentials, strip_url_credentials
from stickypi_assets_tests.storage.s3_server import S3Endpoint

PASSWORD = "hunter2-Sup3r-secret"


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.startswith(".tmp-"))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the store, with files a link in the store could reach."""
    folder = tmp_path / "outside"
    (folder / "deep").mkdir(parents=True)
    (folder / "secret.txt").write_bytes(b"outside secret")
    (folder / "deep" / "precious.bin").write_bytes(b"precious")
    return folder


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


def outside_untouched(outside: Path) -> None:
    assert (outside / "secret.txt").read_bytes() == b"outside secret"
    assert (outside / "deep" / "precious.bin").read_bytes() == b"precious"
    assert temp_files(outside) == []


# -- links in a local store ---------------------------------------------------------------------------------


def test_symlink_to_a_file_outside_the_root(local: LocalObjectStore, outside: Path, tmp_path: Path):
    local.put_bytes("a/real.txt", b"real")
    (local.root / "a" / "link.txt").symlink_to(outside / "secret.txt")
    (local.root / "environ").symlink_to("/proc/self/environ")
    for key in ("a/link.txt", "environ"):
        with pytest.raises(LinkRefused, match=repr(key)) as caught:
            local.get_bytes(key)
        assert isinstance(caught.value, InvalidKey) and isinstance(caught.value, ObjectStoreError)
        with pytest.raises(LinkRefused, match="symbolic link"):
            local.stat(key)
        with pytest.raises(LinkRefused):
            local.iter_chunks(key)
        with pytest.raises(LinkRefused):
            local.download(key, tmp_path / "copy")
        with pytest.raises(LinkRefused):
            local.local_path(key)
        assert not local.exists(key)
    assert not (tmp_path / "copy").exists()
    assert [i.key for i in local.list()] == ["a/real.txt"]
    assert local.delete_prefix("a/") == 1  # the real object; the link is not an object
    outside_untouched(outside)
    # overwriting a link's key replaces the link itself, never writes through it
    local.put_bytes("environ", b"mine")
    assert local.get_bytes("environ") == b"mine" and not (local.root / "environ").is_symlink()


def test_symlinked_directory_outside_the_root(local: LocalObjectStore, outside: Path):
    local.put_bytes("d/real.txt", b"real")
    (local.root / "d" / "linked").symlink_to(outside, target_is_directory=True)
    (local.root / "top").symlink_to(outside, target_is_directory=True)
    assert [i.key for i in local.list()] == ["d/real.txt"]
    assert [i.key for i in local.list("d/")] == ["d/real.txt"]
    assert local.list_prefixes() == ["d/"] and local.list_prefixes("d/") == []
    for prefix in ("top/", "d/linked/", "d/linked/deep/"):
        with pytest.raises(LinkRefused, match=repr(prefix)):
            list(local.list(prefix))
        with pytest.raises(LinkRefused):
            local.delete_prefix(prefix)
    with pytest.raises(LinkRefused, match="'top'"):
        local.get_bytes("top/secret.txt")
    with pytest.raises(LinkRefused):
        local.delete("top/secret.txt")
    assert local.delete_prefix("d/") == 1
    assert local.delete_prefix("t") == 0
    assert local.remove_stale_temp_files(older_than_s=0) == 0
    outside_untouched(outside)
    assert (local.root / "d" / "linked").is_symlink()  # the link itself is left for a person to look at


def test_put_through_a_linked_directory(local: LocalObjectStore, outside: Path, tmp_path: Path):
    (local.root / "raw_images").symlink_to(outside, target_is_directory=True)
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 100)
    with pytest.raises(LinkRefused, match="'raw_images/new.jpg'.*'raw_images'"):
        local.put_bytes("raw_images/new.jpg", b"jpeg")
    with pytest.raises(LinkRefused):
        local.put_file("raw_images/deep/new.bin", src)
    with pytest.raises(LinkRefused):
        local.put_bytes("raw_images/secret.txt", b"overwritten")
    assert sorted(p.name for p in outside.rglob("*")) == ["deep", "precious.bin", "secret.txt"]
    outside_untouched(outside)


@pytest.mark.timeout(30)
def test_a_fifo_planted_in_the_store_is_not_an_object(local: LocalObjectStore):
    """Opening a FIFO for reading blocks until a writer comes: the store must never do that."""
    local.put_bytes("f/real.txt", b"real")
    os.mkfifo(local.root / "f" / "pipe")
    assert [i.key for i in local.list()] == ["f/real.txt"]
    with pytest.raises(ObjectNotFound):
        local.get_bytes("f/pipe")
    assert not local.exists("f/pipe")


# -- secrets in the endpoint URL ----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def whole_chain(exc: BaseException) -> str:
    """What a traceback (and Dagster's event log, which formats the same chain) would show."""
    text = "".join(traceback.format_exception(exc))
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:  # also the hidden links, in case a printer ignored suppression
        seen.append(exc)
        text += f"\n{exc!r} {exc}"
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return text


def test_redact_url_credentials():
    text = (
        f'Could not connect to the endpoint URL: "http://admin:{PASSWORD}@127.0.0.1:9/b/k?x-id=GetObject" '
        f"and https://user:p@ss:{PASSWORD}@minio.example.org/x and "
        f"https://s3.example.org/b/k?X-Amz-Signature={PASSWORD}&X-Amz-Security-Token={PASSWORD}&part=1"
    )
    redacted = redact_url_credentials(text)
    assert PASSWORD not in redacted and "p@ss" not in redacted
    assert 'http://***@127.0.0.1:9/b/k?x-id=GetObject"' in redacted
    assert "https://***@minio.example.org/x" in redacted and "&part=1" in redacted
    assert redact_url_credentials("no url here: a@b, s3://bucket/key") == "no url here: a@b, s3://bucket/key"
    assert strip_url_credentials(f"https://u:{PASSWORD}@Host:9000/p?token={PASSWORD}#f") == "https://host:9000/p"
    assert PASSWORD not in strip_url_credentials(f"http://u:{PASSWORD}@host:notaport/")


@pytest.mark.s3
@pytest.mark.timeout(60)
def test_endpoint_url_with_user_and_password(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    endpoint = f"http://stickypi:{PASSWORD}@127.0.0.1:{closed_port()}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "STICKYPI_STORE_URL": "s3://bucket/season",
        "STICKYPI_S3_ENDPOINT_URL": endpoint,
        "STICKYPI_S3_REGION": "us-east-1",
        "STICKYPI_S3_CONNECT_TIMEOUT": "0.5",
        "STICKYPI_S3_READ_TIMEOUT": "0.5",
        "STICKYPI_S3_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    store = open_object_store(Settings.from_env())
    assert isinstance(store, S3ObjectStore)
    assert PASSWORD not in f"{store.describe()} {store!r} {vars(store)}"
    for call in (
        lambda: store.get_bytes("a/b.jpg"),
        lambda: store.put_bytes("a/b.jpg", b"x"),
        lambda: list(store.list("a/")),
        lambda: store.delete_prefix("a/"),
    ):
        with pytest.raises(ObjectStoreError) as caught:
            call()
        message = str(caught.value)
        assert PASSWORD not in message and PASSWORD not in whole_chain(caught.value)
        assert "s3://bucket/season/" in message and "127.0.0.1" in message  # still says what failed, where
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err


# -- a server that accepts and never answers ----------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on loopback that accepts every connection, reads the request and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # keep it open: the client waits for an answer that never comes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.s3
@pytest.mark.timeout(60)
def test_silent_server_times_out_within_attempts_times_timeout(silent_server: str, tmp_path: Path):
    store = S3ObjectStore(
        "bucket",
        endpoint_url=silent_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        connect_timeout=0.5,
        read_timeout=0.5,
        max_attempts=2,
    )
    # 2 attempts x 0.5 s, plus the standard mode's backoff (at most 1 s before the second attempt) and slack;
    # a download may try its request twice (the transfer manager's retry of a broken body stream).
    bound = 2 * 0.5 + 1.0 + 1.5
    calls = [
        (lambda: store.get_bytes("a/b.jpg"), bound),
        (lambda: store.download("a/b.jpg", tmp_path / "b"), 2 * bound),
    ]
    for call, limit in calls:
        t0 = time.monotonic()
        with pytest.raises(ObjectStoreError, match="STICKYPI_S3_READ_TIMEOUT=0.5 s, after 2 attempt") as caught:
            call()
        elapsed = time.monotonic() - t0
        assert 0.9 < elapsed < limit, elapsed
        assert "a/b.jpg" in str(caught.value) and "timeout" in str(caught.value).lower()
    assert not (tmp_path / "b").exists() and temp_files(tmp_path) == []


def test_settings_timeouts_reach_the_client(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STICKYPI_S3_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("STICKYPI_S3_READ_TIMEOUT", "2.5")
    monkeypatch.setenv("STICKYPI_S3_MAX_ATTEMPTS", "3")
    store = open_object_store(Settings.from_env().replace(store_url="s3://bucket/p"))
    config = store.client.meta.config  # type: ignore[attr-defined]
    assert (config.connect_timeout, config.read_timeout) == (1.5, 2.5)
    assert config.retries["mode"] == "standard" and config.retries["total_max_attempts"] == 3


# -- temp files of crashed writers --------------------------------------------------------------------------


def test_stale_temp_files_swept_fresh_ones_kept(tmp_path: Path):
    root = tmp_path / "store"
    (root / "a").mkdir(parents=True)
    (root / "other").mkdir()
    stale, fresh = root / "a" / ".tmp-0123456789abcdef", root / "a" / ".tmp-fedcba9876543210"
    elsewhere = root / "other" / ".tmp-00000000000000aa"
    old = time.time() - 2 * 3600
    for path in (stale, fresh, elsewhere):
        path.write_bytes(b"partial")
    for path in (stale, elsewhere):
        os.utime(path, (old, old))
    store = open_object_store(Settings.from_env().replace(store_url=str(root)))
    store.put_bytes("a/new.bin", b"new")
    assert temp_files(root) == sorted([fresh, elsewhere])  # swept where it wrote, in-flight one kept
    # once per folder per process: a later write does not scan the folder again
    late = root / "a" / ".tmp-1111111111111111"
    late.write_bytes(b"partial")
    os.utime(late, (old, old))
    LocalObjectStore(root).put_bytes("a/again.bin", b"again")
    assert late.exists()
    assert LocalObjectStore(root).remove_stale_temp_files() == 2  # the maintenance sweep covers the rest
    assert temp_files(root) == [fresh]


# -- objects too large to read whole ------------------------------------------------------------------------


def test_object_over_max_object_bytes_refused_with_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STICKYPI_MAX_OBJECT_BYTES", "1000")
    store = open_object_store(Settings.from_env().replace(store_url=str(tmp_path / "store")))
    store.put_bytes("big.bin", b"x" * 1001)
    store.put_bytes("ok.bin", b"y" * 1000)
    with pytest.raises(ObjectTooLarge, match="'big.bin'.* 1001 bytes.*1000 bytes.*STICKYPI_MAX_OBJECT_BYTES"):
        store.get_bytes("big.bin")
    assert store.get_bytes("ok.bin") == b"y" * 1000
    # the streaming paths have no limit
    assert b"".join(store.iter_chunks("big.bin", chunk_size=300)) == b"x" * 1001
    assert store.download("big.bin", tmp_path / "big.bin").read_bytes() == b"x" * 1001
    with pytest.raises(ObjectNotFound):
        store.iter_chunks("missing.bin")


@pytest.mark.s3
def test_s3_object_over_max_object_bytes_refused_with_its_size(s3_endpoint: S3Endpoint, tmp_path: Path):
    store = s3_endpoint.store(prefix="p", max_object_bytes=1000)
    store.put_bytes("big.bin", b"x" * 1001)
    with pytest.raises(ObjectTooLarge, match="'big.bin'.* 1001 bytes.*STICKYPI_MAX_OBJECT_BYTES"):
        store.get_bytes("big.bin")
    assert b"".join(store.iter_chunks("big.bin", chunk_size=300)) == b"x" * 1001
    assert store.download("big.bin", tmp_path / "big.bin").read_bytes() == b"x" * 1001
    with pytest.raises(ObjectNotFound):
        store.iter_chunks("missing.bin")


# -- stickypi synth --out s3:// -----------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_synth_out_s3_with_the_endpoint_setting_writes_to_that_endpoint(s3_endpoint: S3Endpoint, capsys):
    from stickypi_assets.cli.synth import add_parser

    parser = argparse.ArgumentParser(prog="stickypi")
    add_parser(parser.add_subparsers(dest="command"))
    out = f"s3://{s3_endpoint.bucket}/synth"
    args = parser.parse_args(
        ["synth", "--out", out, "--width", "160", "--height", "120", "--seed", "3", "--no-progress"]
    )
    assert args.func(args) == 0
    store = s3_endpoint.store(prefix="synth")
    manifest = json.loads(store.get_bytes("ground_truth/manifest.json"))
    assert manifest["summary"]["devices"] == 1
    assert any(i.key.startswith("raw_images/") for i in store.list("raw_images/"))
    assert s3_endpoint.endpoint_url.split("//")[1] in capsys.readouterr().out  # "wrote ... to S3 bucket ... at"
