"""The watcher's sink in the watch tests: every (name relative to the folder, event), from the
watcher's thread, as the intake's queue would get them."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path


class EventSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.events: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, path: str, event: str) -> None:
        with self._lock:
            self.events.append((os.path.relpath(path, self.folder), event))

    def of(self, name: str) -> list[str]:
        """The events seen for one name, in order."""
        with self._lock:
            return [event for path, event in self.events if path == name]

    def names(self, event: str | None = None) -> set[str]:
        """The names seen (with that event, if given)."""
        with self._lock:
            return {name for name, kind in self.events if event in (None, kind)}

    def counts(self) -> Counter[tuple[str, str]]:
        """How often each (name, event) was seen."""
        with self._lock:
            return Counter(self.events)
