"""One service per state directory: an exclusive flock on state_dir/lock, held for life."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from invoice_mailer import storage
from invoice_mailer.errors import LockedError


def acquire_lock(state_dir: Path) -> int:
    """One service per state directory: an exclusive flock held for the process's life."""
    storage.prepare(state_dir)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LockedError(
            f"another invoice-mailer (pid {holder}) is already running on {state_dir}"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def is_running(state_dir: Path) -> bool:
    """Whether a service holds the state directory's lock (for `status`)."""
    try:
        fd = os.open(state_dir / "lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
