"""Fixtures shared by every test module; fail any test that leaks a thread."""

from __future__ import annotations

import threading

import pytest

from tests.helpers import wait_until


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
