"""The service's threads as the system sees them (service/osthreads.py): named, and the intake
and the worker nicer than the sender, as the kernel reports them, here and in the real service."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from invoice_mailer.service.osthreads import BACKGROUND_NICE, os_thread
from tests.support.helpers import wait_until
from tests.support.service_harness import ServiceProcess, service_config

BASE = os.getpriority(os.PRIO_PROCESS, 0) if sys.platform.startswith("linux") else 0

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice is Linux"),
    pytest.mark.skipif(BASE + BACKGROUND_NICE > 19, reason="already too nice to tell apart"),
]


def _threads(pid: int) -> dict[str, list[int]]:
    """Each thread's name and nice value, from /proc (stat's field 19, after the name's ')')."""
    found: dict[str, list[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a thread that just ended
        found.setdefault(name, []).append(int(fields[16]))
    return found


def test_a_background_thread_is_named_and_lowers_its_own_priority_only():
    seen: dict[str, list[int]] = {}

    def loop() -> None:
        seen.update(_threads(os.getpid()))

    for name, background in (("bg-loop", True), ("plain-loop", False)):
        thread = threading.Thread(target=os_thread(loop, background=background), name=name)
        thread.start()
        thread.join()

    assert seen["bg-loop"] == [BASE + BACKGROUND_NICE]
    assert seen["plain-loop"] == [BASE]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == BASE  # the caller's


def test_in_the_service_only_the_intake_and_the_worker_are_nicer(tmp_path, smtp_server):
    loops = ("intake", "worker", "sender", "receipts")
    with ServiceProcess(service_config(tmp_path, smtp_server)) as service:
        pid = service.process.pid
        threads = wait_until(lambda: (t := _threads(pid)) and all(n in t for n in loops) and t)

    lowered = [BASE + BACKGROUND_NICE]
    assert {name: threads.pop(name) for name in loops} == {
        "intake": lowered,
        "worker": lowered,
        "sender": [BASE],
        "receipts": [BASE],
    }
    # The rest, idle: the main thread and the folder's watcher, at the process's priority.
    assert sorted(nice for nices in threads.values() for nice in nices) == [BASE, BASE]
