"""Object store: one small interface over a local folder or an S3-compatible bucket.

Why an interface of our own rather than boto3 or fsspec everywhere: assets, the warehouse and the CLI only
need a dozen operations, and each must mean exactly the same thing on a laptop folder and on a bucket, so the
demo runs with no setting and a field station can switch to S3 by changing one URL. The guarantees that the
rest of the platform relies on are:

* **Atomic writes.** A reader sees the old object or the new one, never a partial one. S3 gives this for
  free; locally every write goes to a hidden ``.tmp-*`` file in the destination folder, is fsynced and then
  ``os.replace``-d over the key. A crashed writer leaves at most a ``.tmp-*`` file, which listings skip.
* **Content hashes.** :class:`ObjectInfo.md5` is the hex MD5 of the object's bytes on both backends, so it can
  be recorded in tables and used for deduplication and deterministic run keys. On S3 the multipart ETag is
  *not* an MD5, so every write also stores the MD5 in the object's metadata (``x-amz-meta-md5``).
* **Keys are plain, portable paths** (see :func:`validate_key`): what is valid on one backend is valid on the
  other, and no key can escape a local root.
* **Sorted, recursive listings** by key (UTF-8 byte order, as S3 returns them).

The module has no Dagster imports: notebooks and the ``stickypi`` CLI use it directly.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mimetypes
import os
import secrets
import stat as stat_module
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

__all__ = [
    "InvalidKey",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "S3ObjectStore",
    "TEMP_PREFIX",
    "object_store_from_url",
    "validate_key",
    "validate_prefix",
]

#: Name prefix of in-flight local files. Reserved: no key segment may start with it, listings skip it.
TEMP_PREFIX = ".tmp-"
_CHUNK_SIZE = 1024 * 1024
_MAX_KEY_BYTES = 1024  # S3's limit; enforced on both backends so keys stay portable
_MAX_SEGMENT_BYTES = 255  # common file-name limit; enforced on both backends for the same reason
_MIB = 1024 * 1024

T = TypeVar("T")


# -- errors and value types -------------------------------------------------------------------------------


class ObjectStoreError(RuntimeError):
    """An object-store operation failed; the message names the store and the key, never credentials."""


class ObjectNotFound(ObjectStoreError, KeyError):
    """No object at ``key``. Also a ``KeyError`` so mapping-style callers can catch it naturally."""

    def __init__(self, key: str, where: str = "") -> None:
        self.key, self.where = key, where
        message = f"object {key!r} not found" + (f" in {where}" if where else "")
        super().__init__(message)

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message (adding quotes); keep it readable.
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from (key, where), not from the message, so the error survives pickling between processes.
        return (type(self), (self.key, self.where))


class InvalidKey(ObjectStoreError, ValueError):
    """A key or prefix that is not a plain, portable path (see :func:`validate_key`)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or a write tells about one object.

    ``md5`` is the hex MD5 of the content (see the module docstring for the one S3 exception), and
    ``last_modified`` is timezone-aware UTC on both backends, so sensors can compare them directly.
    """

    key: str
    size: int
    md5: str
    last_modified: datetime


# -- key validation -----------------------------------------------------------------------------------------


def _check_chars(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise InvalidKey(f"{what} must be a str, not {type(text).__name__}")
    if "\\" in text:
        raise InvalidKey(f"{what} {text!r} contains a backslash; use '/' to separate folders")
    bad = next((c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F), None)
    if bad is not None:
        raise InvalidKey(f"{what} {text!r} contains the control character {bad!r}")
    if text.startswith("/"):
        raise InvalidKey(f"{what} {text!r} starts with '/'; keys are relative to the store root")
    if "//" in text:
        raise InvalidKey(f"{what} {text!r} contains an empty folder name ('//')")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey(f"{what} {text!r} is not valid Unicode text") from exc
    if len(encoded) > _MAX_KEY_BYTES:
        raise InvalidKey(f"{what} is {len(encoded)} bytes long; the limit is {_MAX_KEY_BYTES} (S3)")


def _check_segments(text: str, what: str, segments: list[str]) -> None:
    for segment in segments:
        if segment in (".", ".."):
            raise InvalidKey(f"{what} {text!r} contains a {segment!r} segment; keys cannot refer to folders")
        if segment.startswith(TEMP_PREFIX):
            raise InvalidKey(
                f"{what} {text!r}: names starting with {TEMP_PREFIX!r} are reserved for in-flight writes"
            )
        if len(segment.encode("utf-8")) > _MAX_SEGMENT_BYTES:
            raise InvalidKey(f"{what} {text!r} has a segment longer than {_MAX_SEGMENT_BYTES} bytes")


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it can name an object on every backend, else raise :class:`InvalidKey`.

    Rejected: empty keys, a leading ``/``, ``.`` or ``..`` segments, backslashes, ``//``, control
    characters, a trailing ``/`` (that names a folder, not an object), segments starting with ``.tmp-``
    (reserved for in-flight local writes), and keys over S3's 1024-byte limit. Keeping one rule set for both
    backends means a key that works in the local demo also works on a bucket, and no key escapes a local root.
    """
    _check_chars(key, "key")
    if key == "":
        raise InvalidKey("key is empty")
    if key.endswith("/"):
        raise InvalidKey(f"key {key!r} ends with '/'; that names a folder (a prefix), not an object")
    _check_segments(key, "key", key.split("/"))
    return key


def validate_prefix(prefix: str) -> str:
    """Like :func:`validate_key` for listing prefixes: ``''`` and a trailing ``/`` are allowed, and the last
    (partial) segment may be any text, since ``list('raw_images/0a')`` matches keys by string prefix."""
    _check_chars(prefix, "prefix")
    complete = prefix.split("/")[:-1]
    _check_segments(prefix, "prefix", complete)
    return prefix


def _is_temp_key(key: str) -> bool:
    return key.rpartition("/")[2].startswith(TEMP_PREFIX)


# -- the interface ------------------------------------------------------------------------------------------


class ObjectStore(ABC):
    """Keys → immutable byte objects, with atomic replacement. See the module docstring for the guarantees."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        """Write ``data`` at ``key`` atomically (replacing any previous object)."""

    @abstractmethod
    def put_file(self, key: str, path: str | Path, *, content_type: str | None = None) -> ObjectInfo:
        """Upload a local file atomically, streaming it rather than loading it into memory."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's content; :class:`ObjectNotFound` (naming the key) if there is none."""

    @abstractmethod
    def download(self, key: str, dest: str | Path) -> Path:
        """Copy the object to the local file ``dest`` atomically (``dest`` is complete or untouched)."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object (not merely a folder/prefix) exists at ``key``."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size, content MD5 and modification time of one object."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """All objects whose key starts with ``prefix`` (recursively), sorted by key; never temp files."""

    @abstractmethod
    def list_prefixes(self, prefix: str = "") -> list[str]:
        """Immediate "sub-folders" under ``prefix``, each ending with ``/`` (S3 ``Delimiter='/'`` semantics:
        only folders that contain at least one object)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error (retries are safe)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many were deleted.

        An empty prefix is refused (:class:`InvalidKey`): one computed-prefix bug must not wipe a store."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """A URI for links and metadata (``file:///...`` or ``s3://bucket/...``); never contains secrets."""

    @abstractmethod
    def describe(self) -> str:
        """A one-line human summary for logs and the demo; never contains secrets."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


def _require_delete_prefix(prefix: str) -> str:
    validate_prefix(prefix)
    if prefix == "":
        raise InvalidKey("delete_prefix('') would delete the whole store; pass an explicit prefix")
    return prefix


# -- local helpers ------------------------------------------------------------------------------------------


def _datetime_from_ns(ns: int) -> datetime:
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1000)


def _iter_file_chunks(path: Path) -> Iterator[bytes]:
    """Read a local file in chunks (a seam that the crash tests replace)."""
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_SIZE):
            yield chunk


def _iter_bytes_chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK_SIZE):
        yield view[start : start + _CHUNK_SIZE]


def _md5_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.md5(usedforsecurity=False), 0
    for chunk in _iter_file_chunks(path):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    """Make a rename durable. Best effort: some filesystems do not allow opening a directory."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _open_temp(folder: Path) -> tuple[int, Path]:
    """Create the hidden temp file for an atomic write, creating ``folder`` if needed.

    ``O_EXCL`` + a random name avoid collisions between concurrent writers; mode 0o666 lets the umask decide
    permissions as for any other file. A concurrent delete may prune the freshly created folder before the
    temp file exists, hence the retry.
    """
    last_error: OSError | None = None
    for _ in range(10):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ObjectStoreError(f"cannot create folder {folder}: a part of that path is a file") from exc
        tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except (FileNotFoundError, FileExistsError) as exc:
            last_error = exc
            continue
        return fd, tmp
    raise ObjectStoreError(f"could not create a temp file in {folder}: {last_error}")


def _atomic_write(dest: Path, fill: Callable[[IO[bytes]], T]) -> tuple[T, os.stat_result]:
    """Write ``dest`` via a temp file in the same folder: fill, fsync, ``os.replace``, fsync the folder.

    Returns ``fill``'s result and the fstat of the written file (taken before the rename, so it describes
    *our* content even if a concurrent writer replaces ``dest`` right after). On any error, including
    ``KeyboardInterrupt``, the temp file is removed and ``dest`` is untouched.
    """
    fd, tmp = _open_temp(dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            result = fill(f)
            f.flush()
            os.fsync(f.fileno())
            st = os.fstat(f.fileno())
        try:
            os.replace(tmp, dest)
        except IsADirectoryError as exc:
            raise ObjectStoreError(f"cannot write {dest}: it is a folder holding other objects") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)
    return result, st


def _copy_chunks(chunks: Iterable[bytes]) -> Callable[[IO[bytes]], tuple[int, str]]:
    def fill(f: IO[bytes]) -> tuple[int, str]:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        for chunk in chunks:
            f.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()

    return fill


# -- local folder -------------------------------------------------------------------------------------------


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``: key ``a/b.jpg`` is ``root/a/b.jpg``.

    Chosen as the zero-setting default because analysts and DuckDB can read the files in place. Writes are
    atomic (temp file + fsync + ``os.replace``). MD5s are computed when asked for and cached in memory by
    (path, inode, size, mtime), so listing a large, unchanged tree twice does not re-read it, and no sidecar
    file ever shows up in listings.

    Differences from S3 that cannot be hidden: a key cannot be both an object and a folder (``a`` and
    ``a/b``), and empty folders left by deletes are pruned so they do not appear in :meth:`list_prefixes`.
    """

    _MD5_CACHE_MAX = 200_000

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ObjectStoreError(f"cannot create the object store folder {self.root}: {exc}") from exc
        self._md5_cache: dict[tuple[str, int, int, int], str] = {}
        self._md5_lock = threading.Lock()

    # paths and hashes

    def local_path(self, key: str) -> Path:
        """The file (or, for a prefix without trailing '/', folder) that ``key`` maps to.

        For readers that want a real path (DuckDB ``read_parquet``, OpenCV); do not write through it, or the
        atomicity guarantee is lost."""
        validate_prefix(key)
        return self.root / key if key else self.root

    def _remember_md5(self, path: Path, st: os.stat_result, md5: str) -> None:
        with self._md5_lock:
            if len(self._md5_cache) >= self._MD5_CACHE_MAX:
                self._md5_cache.pop(next(iter(self._md5_cache)))
            self._md5_cache[(str(path), st.st_ino, st.st_size, st.st_mtime_ns)] = md5

    def _info(self, key: str) -> ObjectInfo:
        path = self.root / key
        try:
            st = os.stat(path)
            if not stat_module.S_ISREG(st.st_mode):
                raise ObjectNotFound(key, self.describe())
            cached = self._md5_cache.get((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
            if cached is None:
                # Hash through one open descriptor and describe *that* file: objects are only ever replaced
                # by rename, so its content cannot change under us and the cache entry is exact.
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    digest = hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False))
                cached = digest.hexdigest()
                self._remember_md5(path, st, cached)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key, self.describe()) from exc
        return ObjectInfo(
            key=key, size=st.st_size, md5=cached, last_modified=_datetime_from_ns(st.st_mtime_ns)
        )

    def _put_chunks(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        validate_key(key)
        path = self.root / key
        (size, md5), st = _atomic_write(path, _copy_chunks(chunks))
        self._remember_md5(path, st, md5)
        return ObjectInfo(key=key, size=size, md5=md5, last_modified=_datetime_from_ns(st.st_mtime_ns))

    # writes

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        """Atomic write; ``content_type`` is accepted for interface parity and not stored locally."""
        return self._put_chunks(key, _iter_bytes_chunks(data))

    def put_file(self, key: str, path: str | Path, *, content_type: str | None = None) -> ObjectInfo:
        return self._put_chunks(key, _iter_file_chunks(Path(path)))

    def delete(self, key: str) -> None:
        validate_key(key)
        path = self.root / key
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return  # a folder is not an object: nothing to delete at this key
        except PermissionError:
            if path.is_dir():  # macOS reports EPERM for unlink() on a directory
                return
            raise
        self._prune_empty_folders(path.parent)

    def _prune_empty_folders(self, folder: Path) -> None:
        """Remove folders emptied by deletes (up to the root) so they do not linger as listed prefixes."""
        while folder != self.root and self.root in folder.parents:
            try:
                os.rmdir(folder)
            except OSError:
                return
            folder = folder.parent

    def delete_prefix(self, prefix: str) -> int:
        _require_delete_prefix(prefix)
        count = 0
        for key in self._keys(prefix):
            try:
                os.unlink(self.root / key)
            except FileNotFoundError:
                continue
            count += 1
            self._prune_empty_folders((self.root / key).parent)
        return count

    def remove_stale_temp_files(self, older_than_s: float = 3600.0) -> int:
        """Delete ``.tmp-*`` files left by writers that crashed (killed processes cannot clean up).

        Only files older than ``older_than_s`` are removed, so in-flight writes are not disturbed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed

    # reads

    def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        try:
            with open(self.root / key, "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key, self.describe()) from exc

    def download(self, key: str, dest: str | Path) -> Path:
        validate_key(key)
        dest = Path(dest)
        try:
            source = open(self.root / key, "rb")  # noqa: SIM115 - closed below, opened first to fail early
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key, self.describe()) from exc
        with source:
            chunks = iter(lambda: source.read(_CHUNK_SIZE), b"")
            _atomic_write(dest, _copy_chunks(chunks))
        return dest

    def exists(self, key: str) -> bool:
        validate_key(key)
        return (self.root / key).is_file()

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        return self._info(key)

    def _keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` in S3 order (Python's code-point order equals UTF-8 byte order)."""
        validate_prefix(prefix)
        base_rel, _, partial = prefix.rpartition("/")
        base = self.root / base_rel if base_rel else self.root
        if not base.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            folder = Path(dirpath)
            if partial and folder == base:
                dirnames[:] = [d for d in dirnames if d.startswith(partial)]
                filenames = [f for f in filenames if f.startswith(partial)]
            rel = folder.relative_to(self.root).as_posix()
            head = "" if rel == "." else rel + "/"
            keys.extend(head + name for name in filenames if not name.startswith(TEMP_PREFIX))
        keys.sort()
        return keys

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key in self._keys(prefix):
            try:
                yield self._info(key)
            except ObjectNotFound:
                continue  # deleted (or replaced by a folder) since the walk

    def _holds_object(self, folder: Path) -> bool:
        for _dirpath, _dirnames, filenames in os.walk(folder):
            if any(not name.startswith(TEMP_PREFIX) for name in filenames):
                return True
        return False

    def list_prefixes(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        base_rel, _, partial = prefix.rpartition("/")
        base = self.root / base_rel if base_rel else self.root
        head = base_rel + "/" if base_rel else ""
        try:
            with os.scandir(base) as scan:
                entries = [*scan]
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = [
            f"{head}{entry.name}/"
            for entry in entries
            if entry.name.startswith(partial)
            and entry.is_dir(follow_symlinks=True)
            and self._holds_object(Path(entry.path))
        ]
        return sorted(found)

    # descriptions

    def uri(self, key: str) -> str:
        return self.local_path(key).as_uri()

    def describe(self) -> str:
        return f"local folder {self.root}"


# -- S3 -----------------------------------------------------------------------------------------------------


def _redact_url(url: str) -> str:
    """Drop user:password and query strings from an endpoint URL before it is shown anywhere."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _is_foreign_key(key: str) -> bool:
    """A key written by another tool that our own rules would reject (listed as is, never re-requested)."""
    try:
        validate_key(key)
    except InvalidKey:
        return True
    return False


def _looks_like_md5(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


_loader_lock = threading.Lock()
_loader: Any = None


def _shared_loader() -> Any:
    """botocore's model loader, shared by all clients: it caches the parsed S3 model (~50 ms a client)."""
    global _loader
    with _loader_lock:
        if _loader is None:
            import botocore.loaders

            _loader = botocore.loaders.create_loader()
        return _loader


class S3ObjectStore(ObjectStore):
    """Objects in an S3 (or S3-compatible: MinIO, Ceph, moto) bucket, optionally under a key prefix.

    Credentials come from the arguments or, better, boto3's usual chain (environment, profile, instance
    role); they are handed to the client and never kept on this object, so ``repr``, :meth:`describe` and
    :meth:`uri` cannot leak them.

    Every write stores the content MD5 in the object metadata (``md5``), because the ETag of a multipart
    upload is not an MD5. Objects written by other tools fall back to the ETag when it is a plain MD5; for
    their multipart objects (ETag ``<hex>-<parts>``) the ETag itself is returned, a fingerprint that still
    changes with the content but is recognisably not an MD5 (it contains ``-``).

    For a custom ``endpoint_url`` the client uses path-style addressing and only sends checksums when an
    operation requires them, which is what most S3-compatible servers support.
    """

    #: Keys per DeleteObjects call (the S3 maximum).
    delete_batch_size = 1000

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        client: Any = None,
        multipart_threshold: int = 8 * _MIB,
    ) -> None:
        if not bucket or "/" in bucket or any(c.isspace() for c in bucket):
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        self.bucket = bucket
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
            prefix += "/"
        self.prefix = prefix
        # Kept only redacted: an endpoint URL can carry user:password, and this object gets logged/repr'd.
        self.endpoint_url = _redact_url(endpoint_url) if endpoint_url else None
        self.region_name = region_name
        if client is None:
            client = self._make_client(endpoint_url, region_name, aws_access_key_id, aws_secret_access_key)
        self._client = client

        from boto3.s3.transfer import TransferConfig

        self._transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=max(multipart_threshold, 5 * _MIB),  # 5 MiB: S3's minimum part size
        )

    @staticmethod
    def _make_client(
        endpoint_url: str | None,
        region_name: str | None,
        aws_access_key_id: str | None,
        aws_secret_access_key: str | None,
    ) -> Any:
        import boto3
        import botocore.session
        from botocore.config import Config

        options: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 5}}
        if endpoint_url:
            options.update(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
        # A private session per client (boto3's default session is not safe to create clients from several
        # threads, and it caches credentials), sharing one loader so the service model is parsed only once.
        botocore_session = botocore.session.get_session()
        botocore_session.register_component("data_loader", _shared_loader())
        session = boto3.session.Session(botocore_session=botocore_session)
        return session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region_name,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            config=Config(**options),
        )

    @property
    def client(self) -> Any:
        """The boto3 S3 client, for the rare operation this interface does not cover."""
        return self._client

    def _full(self, key: str) -> str:
        return self.prefix + key

    def _error(self, exc: Exception, key: str | None, action: str) -> ObjectStoreError:
        """Translate boto errors into our exceptions, keeping the message useful and secret-free."""
        from botocore.exceptions import ClientError

        where = self.describe()
        target = self.uri(key) if key is not None else where
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if key is not None and (code in ("NoSuchKey", "NotFound", "404") or (status == 404 and not code)):
                return ObjectNotFound(key, where)
            if code == "NoSuchBucket":
                context = f" ({where})" if key is not None else ""
                return ObjectStoreError(f"{action} {target}: bucket {self.bucket!r} does not exist{context}")
            return ObjectStoreError(f"{action} {target} failed: {code or status}: {error.get('Message', '')}")
        return ObjectStoreError(f"{action} {target} failed: {type(exc).__name__}: {exc}")

    @contextlib.contextmanager
    def _translate(self, key: str | None, action: str) -> Iterator[None]:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            # The transfer manager wraps the ClientError that says what went wrong (e.g. NoSuchBucket).
            inner = exc.__cause__ or exc.__context__
            cause = inner if isinstance(exc, S3UploadFailedError) and isinstance(inner, ClientError) else exc
            raise self._error(cause, key, action) from exc

    def _info_from_head(self, key: str, head: dict[str, Any]) -> ObjectInfo:
        md5 = head.get("Metadata", {}).get("md5", "").lower()
        if not _looks_like_md5(md5):
            md5 = head.get("ETag", "").strip('"')
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            md5=md5,
            last_modified=head["LastModified"].astimezone(UTC),
        )

    def _head(self, key: str) -> dict[str, Any]:
        with self._translate(key, "stat"):
            return self._client.head_object(Bucket=self.bucket, Key=self._full(key))

    # writes

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        """One PutObject: atomic on S3. ``Content-MD5`` makes the server reject a corrupted body."""
        validate_key(key)
        if not isinstance(data, bytes):
            data = bytes(data)
        digest = hashlib.md5(data, usedforsecurity=False)
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._full(key),
            "Body": data,
            "ContentMD5": base64.b64encode(digest.digest()).decode("ascii"),
            "Metadata": {"md5": digest.hexdigest()},
        }
        if content_type:
            args["ContentType"] = content_type
        with self._translate(key, "put"):
            response = self._client.put_object(**args)
        # PutObject returns no LastModified; the server's Date header is the same clock and saves a HEAD.
        when = datetime.now(UTC)
        header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if header:
            with contextlib.suppress(TypeError, ValueError):
                when = parsedate_to_datetime(header).astimezone(UTC)
        return ObjectInfo(key=key, size=len(data), md5=digest.hexdigest(), last_modified=when)

    def put_file(self, key: str, path: str | Path, *, content_type: str | None = None) -> ObjectInfo:
        """Stream a file with boto3's transfer manager (multipart above ``multipart_threshold``).

        The file is read twice (once to hash, once to upload) so the true MD5 can travel in the metadata of
        the single, atomic upload; a multipart upload only becomes visible when it completes."""
        validate_key(key)
        path = Path(path)
        _size, md5 = _md5_file(path)
        extra: dict[str, Any] = {"Metadata": {"md5": md5}}
        content_type = content_type or mimetypes.guess_type(path.name)[0]
        if content_type:
            extra["ContentType"] = content_type
        with self._translate(key, "upload"):
            self._client.upload_file(
                str(path), self.bucket, self._full(key), ExtraArgs=extra, Config=self._transfer_config
            )
        return self.stat(key)

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._translate(key, "delete"):
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_prefix(self, prefix: str) -> int:
        """List and delete in batches of :attr:`delete_batch_size` (DeleteObjects' limit is 1000 keys)."""
        _require_delete_prefix(prefix)
        deleted = 0
        batch: list[str] = []

        def flush() -> int:
            with self._translate(None, f"delete under {prefix!r} in"):
                response = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            errors = response.get("Errors", [])
            if errors:
                shown = ", ".join(f"{e.get('Key')}: {e.get('Code')}" for e in errors[:5])
                raise ObjectStoreError(
                    f"could not delete {len(errors)} objects in {self.describe()}: {shown}"
                )
            n = len(batch)
            batch.clear()
            return n

        for full in self._iter_raw_keys(prefix):
            batch.append(full)
            if len(batch) >= self.delete_batch_size:
                deleted += flush()
        if batch:
            deleted += flush()
        return deleted

    # reads

    def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        with self._translate(key, "get"):
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            return response["Body"].read()

    def download(self, key: str, dest: str | Path) -> Path:
        """Download (ranged and parallel for big objects) into a temp file beside ``dest``, then rename."""
        validate_key(key)
        dest = Path(dest)

        def fill(f: IO[bytes]) -> None:
            with self._translate(key, "download"):
                self._client.download_fileobj(self.bucket, self._full(key), f, Config=self._transfer_config)

        _atomic_write(dest, fill)
        return dest

    def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        return self._info_from_head(key, self._head(key))

    def _iter_raw_keys(self, prefix: str) -> Iterator[str]:
        for obj in self._iter_listing(prefix):
            yield obj["Key"]

    def _iter_listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=self._full(prefix)))
        while True:
            with self._translate(None, f"list {prefix!r} in"):
                page = next(pages, None)
            if page is None:
                return
            yield from page.get("Contents", [])

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2 pages (already in key order). Folder markers (keys ending in '/') are skipped.

        Listings carry the ETag but not metadata, so multipart objects cost one extra HEAD for their MD5."""
        for obj in self._iter_listing(prefix):
            key = obj["Key"][len(self.prefix) :]
            if not key or key.endswith("/") or _is_temp_key(key):
                continue
            etag = obj.get("ETag", "").strip('"').lower()
            if not _looks_like_md5(etag) and not _is_foreign_key(key):
                with contextlib.suppress(ObjectNotFound):  # deleted since the page was listed
                    yield self._info_from_head(key, self._head(key))
                continue
            yield ObjectInfo(
                key=key, size=int(obj["Size"]), md5=etag, last_modified=obj["LastModified"].astimezone(UTC)
            )

    def list_prefixes(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[str] = []
        with self._translate(None, f"list folders under {prefix!r} in"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(prefix), Delimiter="/"):
                found.extend(cp["Prefix"][len(self.prefix) :] for cp in page.get("CommonPrefixes", []))
        return sorted(found)

    # descriptions

    def uri(self, key: str) -> str:
        validate_prefix(key)
        return f"s3://{self.bucket}/{self._full(key)}"

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        region = f" ({self.region_name})" if self.region_name else ""
        return f"S3 bucket s3://{self.bucket}/{self.prefix}{where}{region}"


# -- construction from settings ---------------------------------------------------------------------------


def object_store_from_url(url: str, **s3_kwargs: Any) -> ObjectStore:
    """Build a store from one setting: a folder path, ``file:///abs/path`` or ``s3://bucket/prefix``.

    ``s3_kwargs`` (``endpoint_url``, ``region_name``, ...) go to :class:`S3ObjectStore` and are ignored for
    local URLs, so callers can pass their S3 settings unconditionally. Credentials do not belong in the URL
    (it ends up in logs and run config); they are refused there.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(
            "object store URL is empty; use a folder path, file:///abs/path or s3://bucket/prefix"
        )
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if "@" in parts.netloc:
            raise ValueError("credentials do not belong in the object store URL; use the environment")
        if not parts.netloc:
            raise ValueError(f"S3 URL {url!r} has no bucket; expected s3://bucket/prefix")
        if parts.query or parts.fragment:
            raise ValueError(f"S3 URL {url!r} has a query or fragment; expected s3://bucket/prefix")
        return S3ObjectStore(parts.netloc, prefix=unquote(parts.path).strip("/"), **s3_kwargs)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL {url!r} names a remote host; expected file:///abs/path")
        return LocalObjectStore(url2pathname(parts.path))
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):  # a plain path (or a Windows drive letter)
        return LocalObjectStore(Path(url).expanduser())
    raise ValueError(
        f"unsupported object store URL scheme {parts.scheme!r} in {url!r}; "
        "use a folder path, file:///abs/path or s3://bucket/prefix"
    )
