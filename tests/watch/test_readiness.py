"""Readiness policy: when a file is finished, decided from observations alone (no clock, no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoice_mailer.config.model import WatchConfig
from invoice_mailer.watch.readiness import (
    Observation,
    ReadinessTracker,
    RecheckPolicy,
    matches,
    wanted,
)

PATTERNS = ("*.pdf", "*.xml", "*.xml.p7m")
IGNORE = (".*", "~$*", "*.tmp", "*.part")
P = "/srv/export/Fattura_1_2026_C042.pdf"
FIRST = Observation(size=1000, mtime_ns=1)
GROWN = Observation(size=2000, mtime_ns=2)


def restat(tracker: ReadinessTracker, now: float, observation: Observation = FIRST) -> list[str]:
    """What the intake does at next_deadline: stat what needs it, then ask what is due."""
    for path in tracker.needs_stat(now):
        tracker.seen(path, now, observation, "scan")
    return tracker.due(now)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Fattura_1_2026_C042.pdf", True),
        ("FATTURA_1_2026_C042.PDF", True),
        ("IT01234567890_0000A.xml", True),
        ("IT01234567890_0000A.xml.p7m", True),
        ("IT01234567890_0000A.XML.P7M", True),
        ("/srv/export/sub/x.pdf", True),
        ("~$foo.pdf", False),
        (".hidden.pdf", False),
        ("x.pdf.tmp", False),
        ("x.pdf.part", False),
        ("x.tmp", False),
        ("notes.txt", False),
        ("x.pdf.bak", False),
    ],
)
def test_matches(name: str, expected: bool) -> None:
    assert matches(name, PATTERNS, IGNORE) is expected


def test_ignore_wins_over_patterns() -> None:
    assert not matches("x.pdf", ["*.pdf"], ["x.*"])


@pytest.mark.parametrize(
    ("path", "recursive", "expected"),
    [
        ("/srv/export/a.pdf", False, True),
        ("/srv/export/sub/a.pdf", False, False),
        ("/srv/export/sub/a.pdf", True, True),
        ("/srv/export/.recycle/a.pdf", True, False),  # Samba's recycle bin is not new documents
        ("/srv/other/a.pdf", True, False),
        ("/srv/export-old/a.pdf", True, False),
    ],
)
def test_wanted(path: str, recursive: bool, expected: bool) -> None:
    config = WatchConfig(folder=Path("/srv/export"), recursive=recursive)
    assert wanted(path, "/srv/export", config) is expected


def test_stable_file_is_due_after_settle_once_a_fresh_stat_confirms_it() -> None:
    tracker = ReadinessTracker(settle=2.0)
    tracker.seen(P, 0.0, FIRST, "scan")
    assert tracker.due(1.9) == []
    assert tracker.next_deadline() == 2.0
    assert tracker.due(2.0) == []  # elapsed time alone proves nothing: the file may have grown
    assert tracker.needs_stat(2.0) == [P]
    assert restat(tracker, 2.0) == [P]


def test_changing_size_restarts_the_clock() -> None:
    tracker = ReadinessTracker(settle=2.0)
    tracker.seen(P, 0.0, FIRST, "scan")
    tracker.seen(P, 1.5, GROWN, "modified")
    tracker.seen(P, 1.6, GROWN, "closed")
    assert restat(tracker, 2.0, GROWN) == []
    assert tracker.next_deadline() == 3.5
    assert restat(tracker, 3.5, GROWN) == [P]


def test_growth_seen_only_by_the_restat_restarts_the_clock() -> None:
    tracker = ReadinessTracker(settle=2.0, closes=False)
    tracker.seen(P, 0.0, FIRST, "created")
    assert restat(tracker, 2.0, GROWN) == []  # a slow copy over Samba: still growing
    assert tracker.next_deadline() == 4.0
    assert restat(tracker, 4.0, GROWN) == [P]


def test_created_without_close_waits_for_the_close() -> None:
    tracker = ReadinessTracker(settle=2.0)
    tracker.seen(P, 0.0, FIRST, "created")
    tracker.seen(P, 0.1, FIRST, "modified")
    assert restat(tracker, 3.0) == []
    tracker.seen(P, 3.1, FIRST, "closed")
    assert tracker.due(3.1) == [P]


def test_a_write_after_the_close_waits_for_another_close() -> None:
    tracker = ReadinessTracker(settle=2.0)
    tracker.seen(P, 0.0, FIRST, "created")
    tracker.seen(P, 0.1, FIRST, "closed")
    tracker.seen(P, 0.5, GROWN, "modified")
    assert restat(tracker, 3.0, GROWN) == []
    tracker.seen(P, 3.0, GROWN, "closed")
    assert tracker.due(3.0) == [P]


@pytest.mark.parametrize(("settle", "fallback"), [(2.0, 10.0), (4.0, 20.0)])
def test_missed_close_is_due_after_the_fallback(settle: float, fallback: float) -> None:
    tracker = ReadinessTracker(settle=settle)
    tracker.seen(P, 0.0, FIRST, "created")
    assert tracker.next_deadline() == fallback
    assert restat(tracker, fallback - 0.1) == []
    assert restat(tracker, fallback) == [P]


@pytest.mark.parametrize("event", ["moved_in", "scan"])
def test_moved_in_and_scanned_files_rest_on_stability_alone(event: str) -> None:
    tracker = ReadinessTracker(settle=2.0)
    tracker.seen(P, 0.0, FIRST, event)
    assert restat(tracker, 2.0) == [P]


def test_polling_write_events_rest_on_stability_alone() -> None:
    tracker = ReadinessTracker(settle=2.0, closes=False)
    tracker.seen(P, 0.0, FIRST, "created")
    tracker.seen(P, 0.5, FIRST, "modified")
    assert restat(tracker, 2.0) == [P]


def test_vanished_file_is_forgotten() -> None:
    tracker = ReadinessTracker(settle=2.0)
    tracker.seen(P, 0.0, FIRST, "created")
    assert tracker.pending() == 1
    tracker.seen(P, 1.0, None, "scan")
    assert tracker.pending() == 0
    assert tracker.next_deadline() is None
    assert tracker.due(100.0) == []


def test_due_is_oldest_first_and_forget_removes() -> None:
    tracker = ReadinessTracker(settle=2.0)
    tracker.seen("/e/b.pdf", 1.0, FIRST, "scan")
    tracker.seen("/e/a.pdf", 0.0, FIRST, "scan")
    assert restat(tracker, 5.0) == ["/e/a.pdf", "/e/b.pdf"]
    tracker.forget("/e/a.pdf")
    assert tracker.due(5.0) == ["/e/b.pdf"]
    assert tracker.pending() == 1


def test_next_deadline_is_the_earliest_and_none_when_idle() -> None:
    tracker = ReadinessTracker(settle=2.0)
    assert tracker.next_deadline() is None
    tracker.seen("/e/waits-for-close.pdf", 0.0, FIRST, "created")  # fallback: 10.0
    tracker.seen("/e/scanned.pdf", 3.0, FIRST, "scan")  # settle: 5.0
    assert tracker.next_deadline() == 5.0
    tracker.forget("/e/scanned.pdf")
    assert tracker.next_deadline() == 10.0


def test_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        ReadinessTracker(settle=2.0).seen(P, 0.0, FIRST, "deleted")


def test_recheck_policy() -> None:
    policy = RecheckPolicy(attempts=3, delay=2.0)
    assert [policy.should_retry(n) for n in (1, 2, 3)] == [True, True, False]
    assert policy.next_check(100.0, 1) == 102.0
    assert policy.next_check(100.0, 2) == 104.0  # a slow writer gets more patience
