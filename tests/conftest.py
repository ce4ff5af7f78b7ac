"""Fixtures shared by every test module; fail any test that leaks a thread or reads a file
outside the checkout (tests/support/outside.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support import outside
from tests.support.helpers import wait_until

GUARD = outside.install(Path(__file__).resolve().parent.parent)


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A read refused inside code that swallowed the error still fails the run.
    if GUARD.reached and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    for path in dict.fromkeys(GUARD.reached):
        terminalreporter.write_line(f"a test read {path}, outside the checkout", red=True)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every test stops what it starts (as watchdog's own test-suite insists)."""
    before = {t.ident for t in threading.enumerate()}
    yield

    def settled() -> bool:
        return not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]

    try:
        wait_until(settled, timeout=5)
    except AssertionError:
        leaked = [t.name for t in threading.enumerate() if t.ident not in before]
        pytest.fail(f"test leaked threads: {leaked}")
