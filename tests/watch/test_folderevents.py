"""The events-mode watcher's own inotify reader, on real folders: bursts, overflow, new folders."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from invoice_mailer.config.model import WatchConfig
from invoice_mailer.watch import inotify
from invoice_mailer.watch.folderevents import FolderEvents
from invoice_mailer.watch.watcher import Watcher
from tests.support.helpers import wait_until
from tests.support.watchsink import EventSink

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


@pytest.fixture
def watch(folder: Path) -> Iterator[tuple[Watcher, EventSink]]:
    seen = EventSink(folder)
    watcher = Watcher(WatchConfig(folder=folder, method="events", recursive=True), seen)
    yield watcher, seen
    watcher.stop()


def invoices(where: Path, prefix: str, count: int) -> list[str]:
    names = [f"Fattura_{prefix}{n}_2026_C{n % 50 + 1:03d}.pdf" for n in range(count)]
    for name in names:
        (where / name).write_bytes(b"%PDF-1.4\n")
    return names


def test_a_burst_renamed_in_while_the_intake_moves_files_out_is_all_seen_once(
    tmp_path: Path, folder: Path, watch: tuple[Watcher, EventSink]
) -> None:
    staging, spool = tmp_path / "staging", tmp_path / "spool"
    staging.mkdir()
    spool.mkdir()
    first, second = invoices(staging, "A", 1000), invoices(staging, "B", 1000)
    watcher, seen = watch
    watcher.start()
    for name in first:
        os.rename(staging / name, folder / name)
    for earlier, name in zip(first, second, strict=True):
        os.rename(staging / name, folder / name)  # renamed in...
        os.rename(folder / earlier, spool / earlier)  # ...while the intake takes the others
    wait_until(lambda: seen.names() >= {*first, *second}, timeout=15)
    assert seen.counts() == {(name, "moved_in"): 1 for name in [*first, *second]}


def test_events_the_kernel_dropped_are_made_up_for_by_a_scan(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 50_000:
        pytest.skip(f"max_queued_events is {limit}: too many files to overflow it")
    held, seen = threading.Event(), EventSink(folder)

    def slow_sink(path: str, event: str) -> None:
        held.wait(10)  # the reader is stuck here while the kernel's queue overflows
        seen(path, event)

    watcher = Watcher(WatchConfig(folder=folder, method="events"), slow_sink)
    watcher.start()
    try:
        names = invoices(folder, "O", limit // 3 + 100)  # 3 events each: created, modified, closed
        held.set()
        wait_until(lambda: seen.names("scan") >= set(names), timeout=30)
    finally:
        held.set()
        watcher.stop()
    assert seen.names() == set(names)
    assert f"the kernel dropped events for {folder} (a burst); scanning it" in caplog.text


def test_a_folder_made_or_renamed_in_later_is_watched_and_its_files_named(
    tmp_path: Path, folder: Path, watch: tuple[Watcher, EventSink]
) -> None:
    watcher, seen = watch
    watcher.start()
    moved = tmp_path / "ready"
    (moved / "deep").mkdir(parents=True)
    (moved / "deep" / "inside.pdf").write_bytes(b"%PDF")
    os.rename(moved, folder / "ready")
    (folder / "new").mkdir()
    (folder / "new" / "later.pdf").write_bytes(b"%PDF")
    wait_until(lambda: os.path.join("ready", "deep", "inside.pdf") in seen.names("scan"))
    wait_until(lambda: os.path.join("new", "later.pdf") in seen.names())
    (folder / "ready" / "deep" / "after.pdf").write_bytes(b"%PDF")
    wait_until(lambda: os.path.join("ready", "deep", "after.pdf") in seen.names("closed"))


def test_the_thread_ends_when_the_folder_is_deleted(folder: Path) -> None:
    config = WatchConfig(folder=folder, method="events")
    observer = FolderEvents(str(folder), config, lambda path, event: None, lambda: None)
    observer.start()
    try:
        folder.rmdir()
        wait_until(lambda: not observer.is_alive())
    finally:
        observer.stop()


def test_an_unwatchable_folder_raises_at_once(tmp_path: Path) -> None:
    config = WatchConfig(folder=tmp_path / "nowhere", method="events")
    with pytest.raises(FileNotFoundError):
        FolderEvents(str(tmp_path / "nowhere"), config, lambda path, event: None, lambda: None)


def test_parse_reads_names_and_the_overflow_marker() -> None:
    record = (
        inotify._HEADER.pack(3, inotify.IN_MOVED_TO, 7, 16) + b"a.pdf".ljust(16, b"\0")
    ) + inotify._HEADER.pack(-1, inotify.IN_Q_OVERFLOW, 0, 0)
    assert list(inotify.parse(record)) == [
        inotify.Event(3, inotify.IN_MOVED_TO, b"a.pdf"),
        inotify.Event(-1, inotify.IN_Q_OVERFLOW, b""),
    ]
