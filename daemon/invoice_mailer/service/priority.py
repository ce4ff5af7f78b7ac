"""The intake and the worker run at a lower CPU priority than the sender (issue 19).

Taking, routing, building and filing are background work: nobody waits for one document's
row, while the mail server waits for the sender between two messages. In a burst the two
kinds want the cores at once; the kernel then runs the sender first when the server's reply
comes. On Linux the nice value belongs to each thread, and threads started from one (the
fsync pools) inherit it; elsewhere, or where the system refuses, every thread runs as before.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable

# Steps nicer than the process (19 at most): at 10 a busy background thread gets about a tenth
# of the CPU a normal one gets when both want it, and all of it when the sender waits.
BACKGROUND_NICE = 10


def lower_priority(by: int = BACKGROUND_NICE) -> int | None:
    """This thread `by` steps nicer (never less nice, no privilege needed); its nice value
    now, or None where a thread's own priority cannot be set."""
    if not sys.platform.startswith("linux"):
        return None  # setpriority on a thread id is a Linux property
    thread = threading.get_native_id()
    try:
        nice = min(19, os.getpriority(os.PRIO_PROCESS, thread) + by)
        os.setpriority(os.PRIO_PROCESS, thread, nice)
    except OSError:
        return None
    return nice


def in_background(loop: Callable[..., None]) -> Callable[..., None]:
    """`loop`, run by a thread that first lowers its own priority."""

    @functools.wraps(loop)
    def run(*args: object) -> None:
        lower_priority()
        loop(*args)

    return run
