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
  other, and no key can escape a local root, neither by ``..`` nor through a symbolic link (see
  :class:`LocalObjectStore`).
* **Bounded memory and time.** :meth:`ObjectStore.get_bytes` refuses objects over ``max_object_bytes``
  (``STICKYPI_MAX_OBJECT_BYTES``) before reading them; :meth:`~ObjectStore.download` and
  :meth:`~ObjectStore.iter_chunks` stream any size. S3 requests have connect/read timeouts and a bounded number
  of attempts (``STICKYPI_S3_CONNECT_TIMEOUT``, ``STICKYPI_S3_READ_TIMEOUT``, ``STICKYPI_S3_MAX_ATTEMPTS``).
* **No secret in a message.** Every :class:`ObjectStoreError` is built through
  :func:`~stickypi_assets.storage.redact.redact_url_credentials` and is raised without botocore's exception
  chained to it (that one quotes the endpoint URL), so neither stderr nor Dagster's event log shows a password.
* **Sorted, recursive listings** by key (UTF-8 byte order, as S3 returns them).

The module has no Dagster imports: notebooks and the ``stickypi`` CLI use it directly.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import itertools
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
from typing import IO, Any, ClassVar, TypeVar
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from stickypi_assets.settings import (
    DEFAULT_MAX_OBJECT_BYTES,
    DEFAULT_S3_CONNECT_TIMEOUT,
    DEFAULT_S3_MAX_ATTEMPTS,
    DEFAULT_S3_READ_TIMEOUT,
)
from stickypi_assets.storage.redact import redact_url_credentials, strip_url_credentials

__all__ = [
    "InvalidKey",
    "LinkRefused",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectTooLarge",
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


class ObjectTooLarge(ObjectStoreError):
    """An object too large to read whole into memory (over ``max_object_bytes``); stream it instead."""

    def __init__(self, key: str, size: int, limit: int, where: str = "") -> None:
        self.key, self.size, self.limit, self.where = key, size, limit, where
        place = f" in {where}" if where else ""
        super().__init__(
            f"object {key!r}{place} is {size} bytes, over the limit of {limit} bytes for reading it whole "
            f"(STICKYPI_MAX_OBJECT_BYTES); use download() or iter_chunks() to stream it"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.size, self.limit, self.where))


def _check_limit(max_object_bytes: int) -> int:
    if isinstance(max_object_bytes, bool) or not isinstance(max_object_bytes, int) or max_object_bytes < 1:
        raise ValueError(f"max_object_bytes must be a whole number of bytes >= 1, not {max_object_bytes!r}")
    return max_object_bytes


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
        """The object's content; :class:`ObjectNotFound` (naming the key) if there is none.

        Refused with :class:`ObjectTooLarge` (giving the size) for objects over the store's
        ``max_object_bytes``, checked before reading: one oversized object must not exhaust a worker's memory.
        Callers that only copy an object use :meth:`download` or :meth:`iter_chunks`, which stream."""

    @abstractmethod
    def iter_chunks(self, key: str, chunk_size: int = _CHUNK_SIZE) -> Iterator[bytes]:
        """The object's content in chunks of at most ``chunk_size`` bytes, whatever its size (no limit).

        :class:`ObjectNotFound` is raised by the call itself, not at the first chunk."""

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


def _atomic_write(dest: Path, fill: Callable[[IO[bytes]], T]) -> tuple[T, os.stat_result]:
    """Write the local file ``dest`` (outside any store: a download's target) as :func:`_atomic_write_in` does,
    creating its folder if needed.

    Returns ``fill``'s result and the fstat of the written file (taken before the rename, so it describes
    *our* content even if a concurrent writer replaces ``dest`` right after). On any error, including
    ``KeyboardInterrupt``, the temp file is removed and ``dest`` is untouched. A concurrent delete may prune
    the freshly created folder before the temp file exists, hence the retry.
    """
    for _ in range(10):
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ObjectStoreError(f"cannot create folder {dest.parent}: a part of that path is a file") from exc
        try:
            return _atomic_write_in(_Folder(dest.parent, None), dest.name, fill)
        except _Retry:
            continue
    raise ObjectStoreError(f"could not create a temp file in {dest.parent}: its folder kept vanishing")


def _copy_chunks(chunks: Iterable[bytes]) -> Callable[[IO[bytes]], tuple[int, str]]:
    def fill(f: IO[bytes]) -> tuple[int, str]:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        for chunk in chunks:
            f.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()

    return fill


# -- local folder: walking without following links -----------------------------------------------------------

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO planted in the store must not block the reader
#: POSIX: folders are opened one segment at a time relative to their parent's descriptor with ``O_NOFOLLOW``,
#: so no check-then-use race can swap a folder for a link between a check and the use. Elsewhere (Windows)
#: every segment is ``lstat``-ed before use: the same rule, without the race guarantee.
_BY_FD = bool(_O_NOFOLLOW and _O_DIRECTORY) and os.open in os.supports_dir_fd and os.scandir in os.supports_fd


class LinkRefused(InvalidKey):
    """A key of a local store that passes through, or is, a symbolic link: refused, never followed.

    Links could lead outside the store's folder (a hand-made ``raw_images -> /`` would let a read return any
    file, a listing show it and ``delete_prefix`` delete it), and they alias keys, which S3 cannot do."""


class _LinkFound(Exception):
    """Internal: segment ``name`` is a symbolic link (turned into :class:`LinkRefused` naming the key)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Folder:
    """One folder of a local store, reached from the root without following any link.

    On POSIX it holds an open descriptor and every operation is relative to it (``dir_fd``), so what it acts
    on is exactly the folder that was checked; elsewhere it holds the path and each step ``lstat``-s first.
    """

    __slots__ = ("fd", "path")

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self.fd = path, fd

    @classmethod
    def open_root(cls, root: Path) -> _Folder:
        # The root itself was resolved when the store was opened: links *to* it are the operator's choice.
        if not _BY_FD:
            return cls(root, None)
        return cls(root, os.open(root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _at(self, name: str) -> tuple[str | Path, dict[str, Any]]:
        return (name, {"dir_fd": self.fd}) if self.fd is not None else (self.path / name, {})

    def lstat(self, name: str) -> os.stat_result:
        target, kw = self._at(name)
        return os.stat(target, follow_symlinks=False, **kw)

    def _raise_if_link(self, name: str, exc: OSError) -> None:
        """After ``ELOOP``/``ENOTDIR`` from an ``O_NOFOLLOW`` open: a link is refused, anything else re-raised."""
        try:
            st = self.lstat(name)
        except OSError:
            raise exc from None
        if stat_module.S_ISLNK(st.st_mode):
            raise _LinkFound(name) from None
        raise exc

    def child(self, name: str, *, create: bool = False) -> _Folder:
        """The sub-folder ``name`` (created if ``create``); :class:`_LinkFound` if it is a link."""
        for _ in range(2):
            try:
                if self.fd is None:
                    st = os.lstat(self.path / name)
                    if stat_module.S_ISLNK(st.st_mode):
                        raise _LinkFound(name)
                    if not stat_module.S_ISDIR(st.st_mode):
                        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(self.path / name))
                    return _Folder(self.path / name, None)
                flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
                return _Folder(self.path / name, os.open(name, flags, dir_fd=self.fd))
            except FileNotFoundError:
                if not create:
                    raise
                target, kw = self._at(name)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(target, **kw)
            except (NotADirectoryError, OSError) as exc:
                if isinstance(exc, FileNotFoundError) or exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                self._raise_if_link(name, exc)
        raise FileNotFoundError(errno.ENOENT, "folder vanished while being created", str(self.path / name))

    def open_file(self, name: str, flags: int, mode: int = 0o666) -> int:
        """``os.open`` of the file ``name`` in this folder, never through a link (:class:`_LinkFound`)."""
        if self.fd is None:
            with contextlib.suppress(FileNotFoundError):
                if stat_module.S_ISLNK(os.lstat(self.path / name).st_mode):
                    raise _LinkFound(name)
            return os.open(self.path / name, flags | _O_CLOEXEC, mode)
        try:
            return os.open(name, flags | _O_NOFOLLOW | _O_CLOEXEC, mode, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.EMLINK):
                raise
            self._raise_if_link(name, exc)
            raise  # unreachable: _raise_if_link always raises

    def unlink(self, name: str) -> None:
        target, kw = self._at(name)
        os.unlink(target, **kw)  # never follows a link: removes the link itself

    def rmdir(self, name: str) -> None:
        target, kw = self._at(name)
        os.rmdir(target, **kw)

    def replace(self, src: str, dst: str) -> None:
        if self.fd is None:
            os.replace(self.path / src, self.path / dst)
        else:
            os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def entries(self) -> list[os.DirEntry[str]]:
        return [*self.scan()]

    def scan(self) -> Iterator[os.DirEntry[str]]:
        """The entries one by one: a caller that stops at the first (is there any object under this device
        folder?) does not read a folder of thousands of images to the end."""
        with os.scandir(self.fd if self.fd is not None else self.path) as scan:
            yield from scan

    def fsync(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self.fd)
        else:
            _fsync_dir(self.path)

    def __enter__(self) -> _Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Retry(Exception):
    """Internal: the destination folder was pruned by a concurrent delete before the temp file existed."""


def _atomic_write_in(folder: _Folder, name: str, fill: Callable[[IO[bytes]], T]) -> tuple[T, os.stat_result]:
    """Write ``name`` in ``folder`` via a temp file beside it: fill, fsync, rename, fsync the folder.

    Inside a store the folder is open by descriptor, so the temp file, the rename and the fsync all act on it
    and a folder swapped for a link mid-write cannot redirect the write."""
    tmp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    try:
        fd = folder.open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileNotFoundError as exc:
        raise _Retry from exc
    try:
        with os.fdopen(fd, "wb") as f:
            result = fill(f)
            f.flush()
            os.fsync(f.fileno())
            st = os.fstat(f.fileno())
        try:
            folder.replace(tmp, name)
        except IsADirectoryError as exc:
            raise ObjectStoreError(
                f"cannot write {folder.path / name}: it is a folder holding other objects"
            ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            folder.unlink(tmp)
        raise
    folder.fsync()
    return result, st


def _temp_entry_is_stale(folder: _Folder, entry: os.DirEntry[str], cutoff: float) -> bool:
    if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
        return False
    try:
        return folder.lstat(entry.name).st_mtime < cutoff
    except OSError:
        return False


# -- local folder -------------------------------------------------------------------------------------------


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``: key ``a/b.jpg`` is ``root/a/b.jpg``.

    Chosen as the zero-setting default because analysts and DuckDB can read the files in place. Writes are
    atomic (temp file + fsync + ``os.replace``). MD5s are computed when asked for and cached in memory by
    (path, inode, size, mtime), so listing a large, unchanged tree twice does not re-read it, and no sidecar
    file ever shows up in listings.

    **No symbolic links under the root.** The root itself may be (or sit behind) a link: it is resolved once,
    here. Below it, a key that passes through a link, or is one, is refused with :class:`LinkRefused` (an
    :class:`InvalidKey` naming the key) by reads, writes and ``delete_prefix``; listings skip links and never
    descend into linked folders; ``exists`` says ``False``; ``delete`` of a link removes the link, never its
    target. Why refuse rather than "resolve and check containment": links to inside the root would alias keys
    (deleting one key would delete another), S3 has no links, and on POSIX the refusal is race-free (each
    folder is opened with ``O_NOFOLLOW`` relative to its parent), where a containment check is check-then-use.
    Only regular files are objects (a FIFO or socket planted in the folder is skipped, never opened blocking).

    Temp files of crashed writers (``.tmp-*``, older than :attr:`stale_temp_s`) are swept from a folder the
    first time this process writes into it, which costs one ``scandir`` of that folder per process, never a
    walk of the store; :meth:`remove_stale_temp_files` sweeps the whole tree on demand.

    Differences from S3 that cannot be hidden: a key cannot be both an object and a folder (``a`` and
    ``a/b``), and empty folders left by deletes are pruned so they do not appear in :meth:`list_prefixes`.
    """

    _MD5_CACHE_MAX = 200_000
    #: A ``.tmp-*`` file untouched for this long belongs to a dead writer (a live one keeps writing to it).
    stale_temp_s = 3600.0
    # Folders already swept by this process, for all stores (several stores may share a root).
    _swept: ClassVar[set[str]] = set()
    _swept_lock: ClassVar[threading.Lock] = threading.Lock()
    _SWEPT_MAX = 100_000

    def __init__(self, root: str | Path, *, max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ObjectStoreError(f"cannot create the object store folder {self.root}: {exc}") from exc
        self.max_object_bytes = _check_limit(max_object_bytes)
        self._md5_cache: dict[tuple[str, int, int, int], str] = {}
        self._md5_lock = threading.Lock()

    # folders, paths and hashes

    def _link_refused(self, key: str, at: str) -> LinkRefused:
        return LinkRefused(
            f"key {key!r} in {self.describe()} goes through the symbolic link {at!r}; the local store does not "
            "follow links (they could lead outside its folder)"
        )

    @contextlib.contextmanager
    def _folder(self, parts: list[str], key: str, *, create: bool = False) -> Iterator[_Folder]:
        """The folder ``root/parts...`` opened without following links; :class:`LinkRefused` naming ``key``.

        ``FileNotFoundError``/``NotADirectoryError`` propagate (the caller knows whether that means "no such
        object" or "a part of the path is a file")."""
        try:
            folder = _Folder.open_root(self.root)
        except FileNotFoundError:
            if not create:
                raise
            self.root.mkdir(parents=True, exist_ok=True)  # the store folder was removed by hand: recreate it
            folder = _Folder.open_root(self.root)
        depth = 0
        try:
            for depth, part in enumerate(parts, 1):  # noqa: B007 - depth names the link in the message
                child = folder.child(part, create=create)
                folder.close()
                folder = child
        except _LinkFound:
            folder.close()
            raise self._link_refused(key, "/".join(parts[:depth])) from None
        except FileNotFoundError:
            folder.close()
            if create:
                raise _Retry from None  # a concurrent delete pruned a folder just created: start again
            raise
        except NotADirectoryError as exc:
            folder.close()
            if create:
                raise ObjectStoreError(
                    f"cannot create folder {self.root.joinpath(*parts)}: a part of that path is a file"
                ) from exc
            raise
        except BaseException:
            folder.close()
            raise
        with folder:
            yield folder

    def _open_object(self, key: str) -> tuple[int, os.stat_result]:
        """An open descriptor on the regular file at ``key`` (checked: no link on the way), and its fstat."""
        validate_key(key)
        *parts, name = key.split("/")
        try:
            with self._folder(parts, key) as folder:
                fd = folder.open_file(name, os.O_RDONLY | _O_NONBLOCK)
        except _LinkFound:
            raise self._link_refused(key, key) from None
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key, self.describe()) from exc
        st = os.fstat(fd)
        if not stat_module.S_ISREG(st.st_mode):  # a folder, a FIFO, a socket: not an object
            os.close(fd)
            raise ObjectNotFound(key, self.describe())
        return fd, st

    def local_path(self, key: str) -> Path:
        """The file (or, for a prefix without trailing '/', folder) that ``key`` maps to.

        For readers that want a real path (DuckDB ``read_parquet``, OpenCV); do not write through it, or the
        atomicity guarantee is lost. Refused (:class:`LinkRefused`) if a part of it that exists is a link; the
        caller opens the path later, so this check is best effort against a writer racing to plant a link."""
        validate_prefix(key)
        path = self.root
        for part in key.split("/") if key else []:
            path = path / part
            try:
                if stat_module.S_ISLNK(os.lstat(path).st_mode):
                    raise self._link_refused(key, str(path.relative_to(self.root).as_posix()))
            except (FileNotFoundError, NotADirectoryError):
                break
        return self.root / key if key else self.root

    def _remember_md5(self, path: Path, st: os.stat_result, md5: str) -> None:
        with self._md5_lock:
            if len(self._md5_cache) >= self._MD5_CACHE_MAX:
                self._md5_cache.pop(next(iter(self._md5_cache)))
            self._md5_cache[(str(path), st.st_ino, st.st_size, st.st_mtime_ns)] = md5

    def _info_from_fd(self, key: str, fd: int, st: os.stat_result) -> ObjectInfo:
        """Describe the open file (closing it). Objects are only ever replaced by rename, so the content of
        an open descriptor cannot change under us and the cache entry is exact."""
        path = self.root / key
        with os.fdopen(fd, "rb") as f:
            cached = self._md5_cache.get((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
            if cached is None:
                cached = hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()
                self._remember_md5(path, st, cached)
        return ObjectInfo(
            key=key, size=st.st_size, md5=cached, last_modified=_datetime_from_ns(st.st_mtime_ns)
        )

    def _info(self, key: str) -> ObjectInfo:
        fd, st = self._open_object(key)
        return self._info_from_fd(key, fd, st)

    def _sweep_once(self, folder: _Folder) -> None:
        """Remove stale temp files from ``folder`` the first time this process writes there (one scandir)."""
        token = str(folder.path)
        with self._swept_lock:
            if token in self._swept:
                return
            if len(self._swept) >= self._SWEPT_MAX:
                self._swept.clear()
            self._swept.add(token)
        cutoff = time.time() - self.stale_temp_s
        with contextlib.suppress(OSError):
            for entry in folder.entries():
                if _temp_entry_is_stale(folder, entry, cutoff):
                    with contextlib.suppress(OSError):
                        folder.unlink(entry.name)

    def _put_chunks(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        validate_key(key)
        *parts, name = key.split("/")
        for _ in range(10):
            try:
                with self._folder(parts, key, create=True) as folder:
                    self._sweep_once(folder)
                    (size, md5), st = _atomic_write_in(folder, name, _copy_chunks(chunks))
            except _Retry:
                continue  # a concurrent delete pruned the folder we had just created
            path = self.root / key
            self._remember_md5(path, st, md5)
            return ObjectInfo(key=key, size=size, md5=md5, last_modified=_datetime_from_ns(st.st_mtime_ns))
        raise ObjectStoreError(f"could not create a temp file for {key!r} in {self.describe()}")

    # writes

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        """Atomic write; ``content_type`` is accepted for interface parity and not stored locally."""
        return self._put_chunks(key, _iter_bytes_chunks(data))

    def put_file(self, key: str, path: str | Path, *, content_type: str | None = None) -> ObjectInfo:
        return self._put_chunks(key, _iter_file_chunks(Path(path)))

    def _unlink_in(self, folder: _Folder, name: str) -> bool:
        """Remove the file (or link: never its target) ``name``; ``False`` if there was no object there."""
        try:
            folder.unlink(name)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False  # a folder is not an object: nothing to delete at this key
        except PermissionError:
            with contextlib.suppress(OSError):
                if stat_module.S_ISDIR(folder.lstat(name).st_mode):  # macOS: EPERM for unlink() on a folder
                    return False
            raise
        return True

    def _prune_empty_folders(self, parts: list[str], key: str) -> None:
        """Remove folders emptied by deletes (up to the root) so they do not linger as listed prefixes.

        Each folder is removed through its parent's descriptor: ``rmdir`` never follows a link, and never
        reaches the root itself."""
        for depth in range(len(parts), 0, -1):
            try:
                with self._folder(parts[: depth - 1], key) as parent:
                    parent.rmdir(parts[depth - 1])
            except (OSError, InvalidKey):
                return

    def delete(self, key: str) -> None:
        validate_key(key)
        *parts, name = key.split("/")
        try:
            with self._folder(parts, key) as folder:
                if not self._unlink_in(folder, name):
                    return
        except (FileNotFoundError, NotADirectoryError):
            return
        self._prune_empty_folders(parts, key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete the objects that :meth:`list` shows under ``prefix``: links are neither followed nor deleted,
        so nothing outside the root is ever touched; a prefix that goes through a link is refused."""
        _require_delete_prefix(prefix)
        count = 0
        for parent, group in itertools.groupby(self._keys(prefix), key=lambda k: k.rpartition("/")[0]):
            parts = parent.split("/") if parent else []
            names = [k.rpartition("/")[2] for k in group]
            try:
                with self._folder(parts, prefix) as folder:
                    count += sum(self._unlink_in(folder, name) for name in names)
            except (FileNotFoundError, NotADirectoryError):
                continue  # deleted concurrently
            self._prune_empty_folders(parts, prefix)
        return count

    def remove_stale_temp_files(self, older_than_s: float | None = None) -> int:
        """Delete ``.tmp-*`` files left by writers that crashed (killed processes cannot clean up), in the
        whole tree (writes already sweep the folders they write to; this is for maintenance).

        Only files older than ``older_than_s`` (default :attr:`stale_temp_s`) are removed, so in-flight
        writes are not disturbed. Linked folders are not entered."""
        cutoff = time.time() - (self.stale_temp_s if older_than_s is None else older_than_s)
        removed = 0

        def sweep(folder: _Folder) -> None:
            nonlocal removed
            for entry in folder.entries():
                if entry.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError, _LinkFound), folder.child(entry.name) as child:
                        sweep(child)
                elif _temp_entry_is_stale(folder, entry, cutoff):
                    with contextlib.suppress(OSError):
                        folder.unlink(entry.name)
                        removed += 1

        with _Folder.open_root(self.root) as root:
            sweep(root)
        return removed

    # reads

    def _check_size(self, key: str, size: int) -> None:
        if size > self.max_object_bytes:
            raise ObjectTooLarge(key, size, self.max_object_bytes, self.describe())

    def get_bytes(self, key: str) -> bytes:
        """The whole object, if it is at most :attr:`max_object_bytes` (:class:`ObjectTooLarge` otherwise)."""
        fd, st = self._open_object(key)
        with os.fdopen(fd, "rb") as f:
            self._check_size(key, st.st_size)
            data = f.read(self.max_object_bytes + 1)  # a file appended to by hand may have grown since fstat
        self._check_size(key, len(data))
        return data

    def iter_chunks(self, key: str, chunk_size: int = _CHUNK_SIZE) -> Iterator[bytes]:
        fd, _st = self._open_object(key)  # here, not in the generator: a missing key fails at the call
        return _iter_fd_chunks(fd, chunk_size)

    def download(self, key: str, dest: str | Path) -> Path:
        dest = Path(dest)
        fd, _st = self._open_object(key)  # opened first to fail early, before a temp file exists
        with os.fdopen(fd, "rb") as source:
            chunks = iter(lambda: source.read(_CHUNK_SIZE), b"")
            _atomic_write(dest, _copy_chunks(chunks))
        return dest

    def exists(self, key: str) -> bool:
        """Whether a regular file is at ``key``; a link (or a key through one) is not an object: ``False``."""
        try:
            fd, _st = self._open_object(key)
        except (ObjectNotFound, LinkRefused):
            return False
        os.close(fd)
        return True

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        return self._info(key)

    def _walk(self, folder: _Folder, head: str, partial: str) -> Iterator[str]:
        """Keys of the regular files below ``folder`` (names starting with ``partial`` at the top), skipping
        links, temp files and anything else that is not a plain file or folder. Lazy: ``_holds_object`` stops at
        the first key."""
        for entry in folder.scan():
            name = entry.name
            if partial and not name.startswith(partial):
                continue
            if entry.is_dir(follow_symlinks=False):
                try:
                    child = folder.child(name)
                except (OSError, _LinkFound):
                    continue  # removed, or swapped for a link, since the scan
                with child:
                    yield from self._walk(child, f"{head}{name}/", "")
            elif entry.is_file(follow_symlinks=False) and not name.startswith(TEMP_PREFIX):
                yield head + name

    def _keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` in S3 order (Python's code-point order equals UTF-8 byte order)."""
        validate_prefix(prefix)
        base_rel, _, partial = prefix.rpartition("/")
        parts = base_rel.split("/") if base_rel else []
        try:
            with self._folder(parts, prefix) as base:
                keys = list(self._walk(base, base_rel + "/" if base_rel else "", partial))
        except (FileNotFoundError, NotADirectoryError):
            return []
        keys.sort()
        return keys

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Sorted like S3; each folder is opened once per listing (keys of one folder are consecutive)."""
        for parent, group in itertools.groupby(self._keys(prefix), key=lambda k: k.rpartition("/")[0]):
            parts = parent.split("/") if parent else []
            try:
                with self._folder(parts, prefix) as folder:
                    infos = []
                    for key in group:
                        try:
                            fd = folder.open_file(key.rpartition("/")[2], os.O_RDONLY | _O_NONBLOCK)
                        except (OSError, _LinkFound):
                            continue  # deleted (or replaced by a folder or a link) since the walk
                        st = os.fstat(fd)
                        if not stat_module.S_ISREG(st.st_mode):
                            os.close(fd)
                            continue
                        infos.append(self._info_from_fd(key, fd, st))
            except (FileNotFoundError, NotADirectoryError, LinkRefused):
                continue
            yield from infos

    def _holds_object(self, folder: _Folder) -> bool:
        return next(self._walk(folder, "", ""), None) is not None

    def list_prefixes(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        base_rel, _, partial = prefix.rpartition("/")
        parts = base_rel.split("/") if base_rel else []
        head = base_rel + "/" if base_rel else ""
        found: list[str] = []
        try:
            with self._folder(parts, prefix) as base:
                for entry in base.entries():
                    if not entry.name.startswith(partial) or not entry.is_dir(follow_symlinks=False):
                        continue
                    try:
                        child = base.child(entry.name)
                    except (OSError, _LinkFound):
                        continue
                    with child:
                        if self._holds_object(child):
                            found.append(f"{head}{entry.name}/")
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(found)

    # descriptions

    def uri(self, key: str) -> str:
        validate_prefix(key)
        return (self.root / key if key else self.root).as_uri()

    def describe(self) -> str:
        return f"local folder {self.root}"


def _iter_fd_chunks(fd: int, chunk_size: int) -> Iterator[bytes]:
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk


# -- S3 -----------------------------------------------------------------------------------------------------


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
    operation requires them, which is what most S3-compatible servers support. User-info and query in the
    endpoint (``http://user:pass@host/?x``) are dropped before botocore sees it (S3 authenticates with the AWS
    keys, never with them), so no botocore or urllib3 message can quote them.

    Every request has a connect timeout, a read timeout (per socket read) and at most ``max_attempts``
    attempts ("standard" retry mode, with backoff of at most a few seconds), so a server that accepts and never
    answers fails the call after about ``max_attempts x (connect or read timeout)`` seconds instead of hanging a
    run (a :meth:`download` may try its request twice; a write may wait 1 s more per attempt for
    ``100-continue``). A server that trickles bytes just under the read timeout is not bounded in total.
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
        connect_timeout: float = DEFAULT_S3_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_S3_READ_TIMEOUT,
        max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
    ) -> None:
        if not bucket or "/" in bucket or any(c.isspace() for c in bucket):
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        self.bucket = bucket
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
            prefix += "/"
        self.prefix = prefix
        # Kept (and used) only stripped: an endpoint URL can carry user:password, and this object gets logged.
        self.endpoint_url = strip_url_credentials(endpoint_url) if endpoint_url else None
        self.region_name = region_name
        self.connect_timeout, self.read_timeout = float(connect_timeout), float(read_timeout)
        self.max_attempts = int(max_attempts)
        if not (self.connect_timeout > 0 and self.read_timeout > 0 and self.max_attempts >= 1):
            raise ValueError(
                f"S3 timeouts must be > 0 s and attempts >= 1 (got connect_timeout={connect_timeout!r}, "
                f"read_timeout={read_timeout!r}, max_attempts={max_attempts!r})"
            )
        self.max_object_bytes = _check_limit(max_object_bytes)
        if client is None:
            client = self._make_client(
                self.endpoint_url,
                region_name,
                aws_access_key_id,
                aws_secret_access_key,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                max_attempts=self.max_attempts,
            )
        self._client = client

        from boto3.s3.transfer import TransferConfig

        self._transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=max(multipart_threshold, 5 * _MIB),  # 5 MiB: S3's minimum part size
            # s3transfer retries a download whose body stream broke, on top of botocore's retries of each
            # request: one more try keeps a flaky link usable and a silent server's download at 2 x the bound.
            num_download_attempts=2,
        )

    @staticmethod
    def _make_client(
        endpoint_url: str | None,
        region_name: str | None,
        aws_access_key_id: str | None,
        aws_secret_access_key: str | None,
        *,
        connect_timeout: float = DEFAULT_S3_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_S3_READ_TIMEOUT,
        max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
    ) -> Any:
        """A boto3 client with bounded timeouts and retries, for an endpoint stripped of any credentials."""
        import boto3
        import botocore.session
        from botocore.config import Config

        options: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            # total_max_attempts counts the first request; botocore's "max_attempts" would count retries only.
            "retries": {"mode": "standard", "total_max_attempts": max_attempts},
        }
        if endpoint_url:
            endpoint_url = strip_url_credentials(endpoint_url)
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
        """Translate boto errors into our exceptions, keeping the message useful and secret-free.

        The message keeps what diagnoses the failure (action, object URI, error code or exception type, the
        server's message) and goes through :func:`redact_url_credentials`, because botocore quotes the endpoint
        URL and a server's message is whatever the server wants to say."""
        from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

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
                return ObjectStoreError(
                    redact_url_credentials(f"{action} {target}: bucket {self.bucket!r} does not exist{context}")
                )
            message = f"{action} {target} failed: {code or status}: {error.get('Message', '')}"
            return ObjectStoreError(redact_url_credentials(message))
        hint = ""
        if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
            which = "STICKYPI_S3_READ_TIMEOUT" if isinstance(exc, ReadTimeoutError) else "STICKYPI_S3_CONNECT_TIMEOUT"
            seconds = self.read_timeout if isinstance(exc, ReadTimeoutError) else self.connect_timeout
            hint = (
                f" (no answer within {which}={seconds:g} s, after {self.max_attempts} attempt(s): "
                "STICKYPI_S3_MAX_ATTEMPTS)"
            )
        return ObjectStoreError(redact_url_credentials(f"{action} {target} failed: {type(exc).__name__}: {exc}{hint}"))

    @contextlib.contextmanager
    def _translate(self, key: str | None, action: str) -> Iterator[None]:
        """Raise botocore's errors as ours, *without* chaining them (``from None``): Dagster and tracebacks
        print the chain, and botocore's own message quotes the endpoint URL. The useful part of it (code, type,
        redacted message) is in ours."""
        from boto3.exceptions import Boto3Error, S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError
        from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError

        try:
            yield
        except (ClientError, BotoCoreError, Boto3Error, RetriesExceededError, S3DownloadFailedError) as exc:
            # The transfer manager wraps the error that says what went wrong (e.g. NoSuchBucket, a timeout).
            inner = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
            wrapped = isinstance(exc, S3UploadFailedError | RetriesExceededError | S3DownloadFailedError) or (
                type(exc).__name__ == "RetriesExceededError"  # boto3's own, raised by download_file
            )
            cause = inner if wrapped and isinstance(inner, ClientError | BotoCoreError) else exc
            error = self._error(cause, key, action)
        else:
            return
        raise error from None

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
        """One GetObject; the size is checked from its headers before the body is read (no extra HEAD)."""
        validate_key(key)
        with self._translate(key, "get"):
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            body = response["Body"]
            try:
                size = int(response.get("ContentLength", 0))
                if size > self.max_object_bytes:
                    raise ObjectTooLarge(key, size, self.max_object_bytes, self.describe())
                data = body.read(self.max_object_bytes + 1)  # a server that lies about the length gets no more
            finally:
                body.close()
        if len(data) > self.max_object_bytes:
            raise ObjectTooLarge(key, len(data), self.max_object_bytes, self.describe())
        return data

    def iter_chunks(self, key: str, chunk_size: int = _CHUNK_SIZE) -> Iterator[bytes]:
        validate_key(key)
        with self._translate(key, "get"):
            body = self._client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"]
        return self._stream(key, body, chunk_size)

    def _stream(self, key: str, body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            while True:
                with self._translate(key, "read"):
                    chunk = body.read(chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

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


def object_store_from_url(
    url: str, *, max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES, **s3_kwargs: Any
) -> ObjectStore:
    """Build a store from one setting: a folder path, ``file:///abs/path`` or ``s3://bucket/prefix``.

    ``max_object_bytes`` applies to both backends. ``s3_kwargs`` (``endpoint_url``, ``region_name``,
    ``connect_timeout``, ``read_timeout``, ``max_attempts``, ...) go to :class:`S3ObjectStore` and are ignored
    for local URLs, so callers can pass their S3 settings unconditionally. Credentials do not belong in the URL
    (it ends up in logs and run config); they are refused there, and error messages quote the URL redacted.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(
            "object store URL is empty; use a folder path, file:///abs/path or s3://bucket/prefix"
        )
    url = url.strip()
    shown = redact_url_credentials(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if "@" in parts.netloc:
            raise ValueError("credentials do not belong in the object store URL; use the environment")
        if not parts.netloc:
            raise ValueError(f"S3 URL {shown!r} has no bucket; expected s3://bucket/prefix")
        if parts.query or parts.fragment:
            raise ValueError(f"S3 URL {shown!r} has a query or fragment; expected s3://bucket/prefix")
        return S3ObjectStore(
            parts.netloc, prefix=unquote(parts.path).strip("/"), max_object_bytes=max_object_bytes, **s3_kwargs
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL {shown!r} names a remote host; expected file:///abs/path")
        return LocalObjectStore(url2pathname(parts.path), max_object_bytes=max_object_bytes)
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):  # a plain path (or a Windows drive letter)
        return LocalObjectStore(Path(url).expanduser(), max_object_bytes=max_object_bytes)
    raise ValueError(
        f"unsupported object store URL scheme {parts.scheme!r} in {shown!r}; "
        "use a folder path, file:///abs/path or s3://bucket/prefix"
    )
