"""inotify(7), read directly: one descriptor, its watches, and its events as plain tuples.

Used for the export folder in events mode (watch/folderevents.py) and for the state directory,
where the main thread notices the ledger being written (a `retry` or `flush` from the CLI)
without looking every second. Linux only: `Inotify()` raises OSError elsewhere.

Three libc calls through ctypes (as watchdog does; no callback, so no writable-executable
memory: MemoryDenyWriteExecute=yes holds); reading and parsing is plain Python.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterator
from typing import NamedTuple

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
# Hundreds of events per read; the kernel returns whole events only.
READ_SIZE = 65536


class Event(NamedTuple):
    wd: int  # -1 for IN_Q_OVERFLOW
    mask: int
    name: bytes  # b"" for an event about the watched folder itself


class _Libc:
    """The three functions, looked up once; AttributeError on a libc without them."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.init1 = libc.inotify_init1
        self.init1.argtypes, self.init1.restype = [ctypes.c_int], ctypes.c_int
        self.add_watch = libc.inotify_add_watch
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int
        self.rm_watch = libc.inotify_rm_watch
        self.rm_watch.argtypes, self.rm_watch.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int


_libc: _Libc | None = None


def _lib() -> _Libc:
    global _libc
    if _libc is None:
        try:
            _libc = _Libc()
        except (AttributeError, OSError):
            raise OSError(errno.ENOSYS, "inotify is not available on this system") from None
    return _libc


def _error(path: str | bytes = "") -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code), *([os.fsdecode(path)] if path else []))


class Inotify:
    """One non-blocking inotify descriptor: poll() its `fd`, then `read()` what came."""

    def __init__(self) -> None:
        fd = _lib().init1(os.O_CLOEXEC | os.O_NONBLOCK)  # IN_CLOEXEC, IN_NONBLOCK
        if fd < 0:
            raise _error()
        self.fd = fd

    def add(self, path: str | bytes | os.PathLike[str], mask: int) -> int:
        """Watch `path`; return its watch descriptor (the same one again for the same inode)."""
        raw = os.fsencode(path)
        wd = _lib().add_watch(self.fd, raw, mask)
        if wd < 0:
            raise _error(raw)
        return wd

    def remove(self, wd: int) -> None:
        """Stop a watch; one already gone (its folder deleted) is not an error."""
        _lib().rm_watch(self.fd, wd)

    def read(self) -> list[Event]:
        """The events queued now (up to READ_SIZE bytes of them; poll again for more); never
        blocks."""
        try:
            return list(parse(os.read(self.fd, READ_SIZE)))
        except BlockingIOError:
            return []

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def parse(data: bytes) -> Iterator[Event]:
    """The events in what one read() returned."""
    offset, end = 0, len(data)
    while offset + _HEADER.size <= end:
        wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        name = data[offset : offset + length].rstrip(b"\0")
        offset += length
        yield Event(wd, mask, name)
