"""Local disk (plain paths and ``file://``): atomic writes by rename,
``put_if_absent`` by a rename that refuses to replace (``renameat2`` with
``RENAME_NOREPLACE``; a hard link where the file system lacks it: both
atomic, both fail if the target exists), new data files created in place.

Directories are created only when a write finds its folder missing (a
``makedirs`` before every write costs three system calls and takes the
parent directory's lock even when the folder exists)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import sys
import tempfile
import uuid
from typing import Any, ClassVar

from vecstore.storage.base import Store


class LocalStore(Store):
    name: ClassVar[str] = "local"
    schemes: ClassVar[tuple[str, ...]] = ("file", "local")
    is_remote: ClassVar[bool] = False
    has_directories: ClassVar[bool] = True

    def local_path(self, key: str) -> str | None:
        return self.path(key)

    def _url_base(self) -> str:
        # local paths are made absolute: a URL recorded in a job must not
        # depend on the reader's working directory
        return self._fs_uri if "://" not in self.uri else self.uri

    def _full_path(self, path: str) -> str:
        return path if path.startswith("/") else "/" + path

    def exists(self, key: str) -> bool:
        """:meth:`Store.exists` with one ``lstat`` (fsspec's ``info`` builds a
        dict of the file's details first: 10,000 of them in the file check
        of a 10,000-namespace commit)."""
        path = self.path(key)
        return bool(self._call("check", key, lambda: os.path.lexists(path)))

    def ls(self, prefix: str = "", *, detail: bool = False) -> list[Any]:
        """:meth:`Store.ls`; names only straight from the directory (fsspec's
        listing stats every entry: most of a 10,000-namespace commit's
        listing time)."""
        if detail:
            return super().ls(prefix, detail=True)
        own = prefix.strip("/")
        path = self.path(prefix)

        def go() -> list[Any]:
            try:
                with self._listing_lock():
                    names = os.listdir(path)
            except (FileNotFoundError, NotADirectoryError):
                return []
            return [f"{own}/{n}" if own else n for n in sorted(names)]

        return self._call("list", prefix, go)

    def walk_file_infos(self, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        """:meth:`Store.walk_file_infos` by ``os.scandir``, the same entries as
        fsspec's walk (links to files followed, links to directories listed
        as entries, not walked). fsspec's walk builds a full info dict per
        file through several layers, 17 us each, which was most of a
        100,000-file import's listing (2 s of the driver, before any task)."""
        own = prefix.strip("/")
        top = self.path(prefix)

        def go() -> list[tuple[str, dict[str, Any]]]:
            with self._listing_lock():
                found = _walk(top)
            return [(f"{own}/{rel}" if own and rel else own or rel, info) for rel, info in found]

        return sorted(self._call("list", prefix, go), key=lambda item: item[0])

    def read_bytes(self, key: str) -> bytes:
        """:meth:`Store.read_bytes` straight from the file (fsspec's ``cat_file``
        costs ~4x the CPU of a small file's read, and ``open().read()`` twice
        what :func:`_read_file` costs: 100,000 small source files are read)."""
        path = self.path(key)
        return self._call("read", key, lambda: _read_file(path))

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self.path(key)
        self._call("write", key, lambda: _atomic_write(path, data))

    def write_new(self, key: str, data: bytes) -> None:
        """:meth:`Store.write_new`: the file created at its name (exclusive),
        without a temporary file and a rename (a tiny namespace's segment and
        id file: two of its ten metadata operations)."""
        path = self.path(key)
        self._call("write", key, lambda: _create_new(path, data))

    def put_if_absent(self, key: str, data: bytes) -> None:
        path = self.path(key)

        def go() -> None:
            try:
                _link_if_absent(path, data)
            except FileExistsError:
                raise self._exists_error(key) from None

        self._call("create", key, go)

    def _temp_file(self, key: str) -> tuple[int, str]:
        directory = os.path.dirname(self.path(key)) or "."
        self._call("write", key, lambda: os.makedirs(directory, exist_ok=True))
        return tempfile.mkstemp(prefix=".vecstore-", suffix=".tmp", dir=directory)

    def _publish(self, key: str, tmp: str) -> None:
        path = self.path(key)
        self._call("write", key, lambda: os.replace(tmp, path))


def _open_creating(path: str, mode: str) -> Any:
    """``open(path, mode)``, creating the missing folders on the way only when
    the first attempt finds them missing."""
    try:
        return open(path, mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return open(path, mode)


def _write_temp(path: str, data: bytes) -> str:
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with _open_creating(tmp, "wb") as f:
        f.write(data)
    return tmp


def _create_new(path: str, data: bytes) -> None:
    """Create ``path`` (it must not exist) holding ``data``; a failed write
    leaves no file."""
    with _open_creating(path, "xb") as f:
        try:
            f.write(data)
        except BaseException:
            with contextlib.suppress(OSError):  # the write's error is the one to raise
                os.unlink(path)
            raise


def _atomic_write(path: str, data: bytes) -> None:
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _link_if_absent(path: str, data: bytes) -> None:
    tmp = _write_temp(path, data)
    try:
        if _rename_noreplace(tmp, path):
            return
        os.link(tmp, path)  # atomic; fails if path exists
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.unlink(tmp)


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_renameat2: Any = None
if sys.platform.startswith("linux"):
    try:
        _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # pragma: no cover - glibc < 2.28, musl
        _renameat2 = None
    else:
        _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                               ctypes.c_uint]
        _renameat2.restype = ctypes.c_int


def _rename_noreplace(src: str, dst: str) -> bool:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError then),
    atomically; False when this system or file system cannot (the caller
    then links)."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                  _RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not on this file system
        return False
    raise OSError(err, os.strerror(err), dst)


def _file_info(st: os.stat_result) -> dict[str, Any]:
    # the fields discovery reads, as fsspec's LocalFileSystem.info gives them
    return {"size": st.st_size, "mtime": st.st_mtime, "type": "file"}


def _walk(top: str) -> list[tuple[str, dict[str, Any]]]:
    """Entries below ``top`` that are not directories (relative path, info);
    ``top`` itself when it is a file (key ""); nothing when it does not
    exist. A broken link is an entry of size 0 (its read then fails with the
    file named); a link's size is its target's, its mtime its own: as in
    fsspec, so a file's listed version (discover.listed_version, kept by the
    load history) is the same either way."""
    try:
        st = os.stat(top)
    except (FileNotFoundError, NotADirectoryError):
        return []
    if not stat.S_ISDIR(st.st_mode):
        return [("", _file_info(st))]
    out: list[tuple[str, dict[str, Any]]] = []
    todo = [("", top)]
    while todo:
        rel, directory = todo.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):  # removed meanwhile
            continue
        for e in entries:
            key = f"{rel}/{e.name}" if rel else e.name
            if e.is_dir(follow_symlinks=False):  # a link to a directory is an entry, as in fsspec
                todo.append((key, e.path))
                continue
            info = _file_info(e.stat(follow_symlinks=False))
            if e.is_symlink():  # fsspec: the target's size, the link's own times
                try:
                    info["size"] = e.stat().st_size
                except OSError:
                    info["size"] = 0
            out.append((key, info))
    return out


def _read_file(path: str) -> bytes:
    """A whole file through the file descriptor (no Python file object):
    ``fstat`` and reads until the end (a file that grew is read whole)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        want = os.fstat(fd).st_size + 1
        parts: list[bytes] = []
        while True:
            got = os.read(fd, max(want, 1 << 16))
            if not got:
                break
            parts.append(got)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)
