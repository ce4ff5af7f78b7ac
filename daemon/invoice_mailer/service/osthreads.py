"""The service's threads as the system sees them: each named (`top -H`, `ps -L`, /proc), and
the intake and the worker at a lower CPU priority than the sender (issue 19).

Taking, routing, building and filing are background work: nobody waits for one document's
row, while the mail server waits for the sender between two messages. In a burst the two
kinds want the cores at once; the kernel then runs the sender first when the server's reply
comes. On Linux the nice value belongs to each thread, and threads started from one (the
fsync pools) inherit it; elsewhere, or where the system refuses, every thread runs as before.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

# Steps nicer than the process (19 at most): at 10 a busy background thread gets about a tenth
# of the CPU a normal one gets when both want it, and all of it when the sender waits.
BACKGROUND_NICE = 10
_LINUX = sys.platform.startswith("linux")


def name_this_thread(name: str) -> None:
    """This thread's name for the system (its first 15 bytes), where a thread has one of its
    own: Linux, /proc/self/task/TID/comm. Python 3.11 names only its Thread objects."""
    if not _LINUX:
        return
    with contextlib.suppress(OSError):  # a name is for people reading `top`; not needed to work
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(name[:15])


def lower_priority(by: int = BACKGROUND_NICE) -> int | None:
    """This thread `by` steps nicer (never less nice, no privilege needed); its nice value
    now, or None where a thread's own priority cannot be set."""
    if not _LINUX:
        return None  # setpriority on a thread id is a Linux property
    thread = threading.get_native_id()
    try:
        nice = min(19, os.getpriority(os.PRIO_PROCESS, thread) + by)
        os.setpriority(os.PRIO_PROCESS, thread, nice)
    except OSError:
        return None
    return nice


def os_thread(loop: Callable[..., None], *, background: bool = False) -> Callable[..., None]:
    """`loop`, run by a thread that first gives the system its Thread's name and, for
    background work, lowers its own priority."""

    @functools.wraps(loop)
    def run(*args: object) -> None:
        name_this_thread(threading.current_thread().name)
        if background:
            lower_priority()
        loop(*args)

    return run
