"""Looking at a directory entry without reading it, then opening it only when it is one plain
file with one name: symlinks, FIFOs, devices, folders and hard-linked files are never opened
for reading (a FIFO would block the reader, a hard link lets another name change the file)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class Unsafe(Exception):
    """A directory entry that is never opened for reading (symlink, FIFO, folder, hard link)."""

    def __init__(self, why: str, info: os.stat_result):
        super().__init__(why)
        self.why, self.info = why, info


def refusal(info: os.stat_result) -> str | None:
    """Why an entry with this lstat/fstat must not be read, or None for one plain file."""
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if stat.S_ISDIR(info.st_mode):
        return "it is a folder"
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file (FIFO, socket or device)"
    if info.st_nlink != 1:
        return f"it has {info.st_nlink} hard links (another name could change it)"
    return None


@contextlib.contextmanager
def open_document(path: Path) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """Open `path` for reading only once it is proven one regular file with one name.

    O_PATH opens the name without opening the file: no FIFO reader appears, no device wakes.

    Raises Unsafe (never opened for reading) or FileNotFoundError (gone, or replaced while
    being opened: its own events bring the new entry back).
    """
    handle = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)  # Linux only, as systemd
    try:
        info = os.fstat(handle)
        if why := refusal(info):
            raise Unsafe(why, info)
        try:
            # The same inode, whatever happens to the name meanwhile.
            fd = os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:  # no /proc: open the name, and compare below
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    finally:
        os.close(handle)
    with os.fdopen(fd, "rb") as stream:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise FileNotFoundError(errno.ENOENT, "replaced while being opened", str(path))
        if why := refusal(opened):
            raise Unsafe(why, opened)
        yield stream, opened
