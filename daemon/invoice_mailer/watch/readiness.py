"""When is a file in the export folder finished? Pure decisions: no I/O, no threads, no clock.

A writer may be copying a PDF over Samba for minutes; taking it early sends half an invoice.
Events are hints (inotify reports a writer's close, polling reports nothing of the kind), so the
rule rests on what the intake observed: the same (size, mtime) for `settle` seconds, plus the
close after the last write where the observer can see one. The intake stats the files and
feeds the observations in; the tracker only decides.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invoice_mailer.config.model import WatchConfig

EVENTS = frozenset({"created", "modified", "closed", "moved_in", "scan"})
WRITE_EVENTS = frozenset({"created", "modified"})
# A close can be lost (queue overflow, a writer that never closes, an event dropped while the
# observer restarted): past this much stability the file is due anyway.
CLOSE_FALLBACK_FACTOR = 5
CLOSE_FALLBACK_FLOOR = 10.0


def matches(name: str, patterns: Iterable[str], ignore: Iterable[str]) -> bool:
    """Is this a document to send? Windows programs write `.PDF` as often as `.pdf`.

    Only the base name counts, compared case-insensitively; an ignore pattern always wins.
    """
    base = os.path.basename(name)
    if not base or ignored(base, ignore):
        return False
    return any(fnmatchcase(base.lower(), pattern.lower()) for pattern in patterns)


def ignored(name: str, ignore: Iterable[str]) -> bool:
    """Does an ignore pattern hide this name? Also used for folders (Samba's .recycle)."""
    base = os.path.basename(name).lower()
    return any(fnmatchcase(base, pattern.lower()) for pattern in ignore)


def wanted(path: str, folder: str, config: WatchConfig) -> bool:
    """Is `path` a document of this watch: inside the folder, name matching, no ignored folder?"""
    relative = os.path.relpath(path, folder)
    parts = relative.split(os.sep)
    if parts[0] == os.pardir or (len(parts) > 1 and not config.recursive):
        return False
    # Samba's .recycle, NetApp's .snapshot: files in them are not new documents.
    if any(ignored(part, config.ignore) for part in parts[:-1]):
        return False
    return matches(parts[-1], config.patterns, config.ignore)


@dataclass(frozen=True)
class Observation:
    """What a stat of the file showed; any change means someone is still writing."""

    size: int
    mtime_ns: int


@dataclass
class _Entry:
    observation: Observation
    since: float  # when this observation was first seen: the start of its stability clock
    checked: float  # when it was last confirmed by a fresh observation
    open_write: bool  # a write event came for this path and no close after it


class ReadinessTracker:
    """Decides which observed paths are finished, from observations the intake feeds in.

    Stability is proven by observations, not assumed from elapsed time: a path is due only when
    an observation taken at least `settle` seconds after the current one first appeared still
    shows it unchanged. `needs_stat(now)` names the paths that want that fresh look.

    `closes`: whether the observer reports a writer's close (inotify does; PollingObserver never
    does, so with `closes=False` write events do not wait for one).
    """

    def __init__(self, settle: float, *, closes: bool = True) -> None:
        self.settle = float(settle)
        self.closes = closes
        self.close_fallback = max(self.settle * CLOSE_FALLBACK_FACTOR, CLOSE_FALLBACK_FLOOR)
        self._entries: dict[str, _Entry] = {}

    def seen(self, path: str, now: float, observation: Observation | None, event: str) -> None:
        """Record an event and the observation the intake made for it (None: the file is gone).

        Events: "created" | "modified" | "closed" | "moved_in" | "scan" (a plain re-stat, or a
        name found by a folder scan: it says nothing about writers).
        """
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r} (expected one of {sorted(EVENTS)})")
        if observation is None:
            self._entries.pop(path, None)
            return
        entry = self._entries.get(path)
        if entry is None:
            entry = _Entry(observation, since=now, checked=now, open_write=False)
            self._entries[path] = entry
        elif observation != entry.observation:
            entry.observation, entry.since, entry.checked = observation, now, now
        else:
            entry.checked = max(entry.checked, now)
        if event in WRITE_EVENTS:
            entry.open_write = self.closes
        elif event in ("closed", "moved_in"):
            # A rename into the folder is the writer saying "done": the content moved in whole.
            entry.open_write = False

    def due(self, now: float) -> list[str]:
        """Paths finished as of the last observations, oldest first.

        The caller takes each one (or gives up on it) and then calls `forget(path)`.
        """
        entries = self._entries.items()
        ready = [(entry.since, path) for path, entry in entries if self._due(entry, now)]
        return [path for _since, path in sorted(ready)]

    def is_due(self, path: str, now: float) -> bool:
        """Is this one path finished as of its last observation? (What `due` would say.)"""
        entry = self._entries.get(path)
        return entry is not None and self._due(entry, now)

    def needs_stat(self, now: float) -> list[str]:
        """Paths whose waiting time is over but whose last observation is older than that.

        Stat each and feed the result with `seen(path, now, observation, "scan")`; unchanged
        ones then come out of `due(now)`, changed ones start their clock again.
        """
        return [
            path
            for path, entry in self._entries.items()
            if now >= self._deadline(entry) > entry.checked
        ]

    def next_deadline(self) -> float | None:
        """When the intake should next look (stat and ask `due`); None when nothing is pending.

        A time in the past means "now": something is due, or wants a fresh stat.
        """
        deadlines = [self._deadline(entry) for entry in self._entries.values()]
        return min(deadlines) if deadlines else None

    def forget(self, path: str) -> None:
        """Stop tracking a path: taken, refused, or vanished."""
        self._entries.pop(path, None)

    def pending(self) -> int:
        """How many paths are being watched until they are finished."""
        return len(self._entries)

    def _due(self, entry: _Entry, now: float) -> bool:
        deadline = self._deadline(entry)
        return entry.checked >= deadline and now >= deadline

    def _deadline(self, entry: _Entry) -> float:
        wait = self.close_fallback if entry.open_write else self.settle
        return entry.since + wait


@dataclass(frozen=True)
class RecheckPolicy:
    """A document whose content check failed may still be being written: look again later.

    `attempts` counts every check, the first included; the wait grows by `delay` each time, so
    a slow copy gets more patience before the file goes to failed/.
    """

    attempts: int = 3
    delay: float = 2.0

    def should_retry(self, failures: int) -> bool:
        """After `failures` failed checks, is another one worth it?"""
        return failures < self.attempts

    def next_check(self, now: float, failures: int) -> float:
        """When to check again after `failures` failed checks."""
        return now + self.delay * max(failures, 1)
