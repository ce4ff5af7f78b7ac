"""The intake and the worker run nicer than the sender (service/priority.py): each thread's own
nice value, as the kernel reports it, in this process and in the real service."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from invoice_mailer.service.priority import BACKGROUND_NICE, in_background
from tests.support.helpers import wait_until
from tests.support.service_harness import ServiceProcess, service_config

BASE = os.getpriority(os.PRIO_PROCESS, 0) if sys.platform.startswith("linux") else 0

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice is Linux"),
    pytest.mark.skipif(BASE + BACKGROUND_NICE > 19, reason="already too nice to tell apart"),
]


def _nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_a_background_loop_lowers_its_own_thread_only():
    seen: dict[str, int] = {}

    def loop(tag: str) -> None:
        seen[tag] = _nice_of(threading.get_native_id())

    thread = threading.Thread(target=in_background(loop), args=("background",))
    thread.start()
    thread.join()
    plain = threading.Thread(target=loop, args=("plain",))
    plain.start()
    plain.join()

    assert seen == {"background": BASE + BACKGROUND_NICE, "plain": BASE}
    assert _nice_of(threading.get_native_id()) == BASE  # the caller keeps its priority


def _threads_nice(pid: int) -> dict[int, int]:
    """Each thread's nice value from /proc (field 19 of stat, after the command's ')')."""
    nice = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a thread that just ended
        nice[int(task.name)] = int(fields[16])
    return nice


def test_in_the_service_the_intake_and_the_worker_are_the_nicer_threads(tmp_path, smtp_server):
    with ServiceProcess(service_config(tmp_path, smtp_server)) as service:
        pid = service.process.pid

        def both_started() -> dict[int, int] | None:
            nice = _threads_nice(pid)
            lowered = [n for n in nice.values() if n == BASE + BACKGROUND_NICE]
            return nice if len(lowered) == 2 else None

        nice = wait_until(both_started, 10)
        assert nice[pid] == BASE  # the main thread
        # Besides intake and worker: the main thread, the folder's watcher, the sender, receipts.
        assert len([n for n in nice.values() if n == BASE]) >= 4
