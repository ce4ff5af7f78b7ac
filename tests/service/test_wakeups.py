"""What ends the main thread's sleep: the ledger written by another connection, another
thread, a signal; and nothing else."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from invoice_mailer.ledger import notices
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.service.wakeups import Wakeups
from tests.support.helpers import wait_until

LONG = 60.0  # a wait that only its cause may end


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    Ledger(state).close()  # the ledger exists, as when the service runs
    return state


@pytest.fixture
def wakeups(state_dir: Path) -> Iterator[Wakeups]:
    wakeups = Wakeups(state_dir)
    yield wakeups
    wakeups.close()


class Sleeper:
    """`wakeups.wait(LONG)` on a thread of its own; `result` once it returned."""

    def __init__(self, wakeups: Wakeups) -> None:
        self.wakeups = wakeups
        self.result: list[bool] = []
        self.thread = threading.Thread(target=lambda: self.result.append(wakeups.wait(LONG)))
        self.thread.start()

    def stop(self) -> None:
        self.wakeups.wake()
        self.thread.join()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_a_commit_by_another_connection_ends_the_wait(state_dir: Path, wakeups: Wakeups) -> None:
    assert wakeups.ledger_watched
    sleeper = Sleeper(wakeups)
    try:
        with Ledger(state_dir) as cli, cli.transaction() as db:  # as `retry` would
            notices.add(db, time.time(), "a change the service must notice")
        wait_until(lambda: sleeper.result)
    finally:
        sleeper.stop()
    assert sleeper.result == [True]


def test_another_thread_ends_the_wait(wakeups: Wakeups) -> None:
    sleeper = Sleeper(wakeups)
    wakeups.wake()
    wait_until(lambda: sleeper.result)
    sleeper.thread.join()
    assert sleeper.result == [False]  # woken, but the ledger was not written


def test_a_file_that_is_not_the_ledger_does_not_count(state_dir: Path, wakeups: Wakeups) -> None:
    (state_dir / "oauth.token").write_text("refreshed")
    assert wakeups.wait(0) is False


def test_a_signal_ends_the_wait_of_the_main_thread(wakeups: Wakeups) -> None:
    caught: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, _frame: caught.append(signum))
    wakeups.catch_signals()
    sender = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1))
    began = time.monotonic()
    sender.start()
    try:
        written = wakeups.wait(LONG)
    finally:
        sender.join()
        signal.signal(signal.SIGUSR1, previous)
    assert caught == [signal.SIGUSR1]
    assert written is False
    assert time.monotonic() - began < LONG / 2  # the signal ended it, not the timeout


def test_without_a_watchable_state_directory_the_ledger_is_looked_at_instead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    wakeups = Wakeups(tmp_path / "missing")
    try:
        assert not wakeups.ledger_watched
        assert "the ledger is looked at every second" in caplog.text
        assert wakeups.wait(0) is False
    finally:
        wakeups.close()
