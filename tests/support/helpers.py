"""Shared test helpers: waiting on conditions with a deadline instead of sleeping, and
dropping a file into a folder as an invoicing program does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Return the first truthy value of predicate(); fail the test when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


def drop(folder: Path, name: str, data: bytes) -> Path:
    """Write as the invoicing program does: a temporary name (ignored), then a rename, so the
    service never sees a half-written file under the final name."""
    temporary = folder / f".drop-{uuid.uuid4().hex}.tmp"
    temporary.write_bytes(data)
    return temporary.rename(folder / name)
