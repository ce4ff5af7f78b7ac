"""The watcher with real watchdog observers on real folders: what reaches the sink, and recovery."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from invoice_mailer.config.model import WatchConfig
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.watch.mounts import choose_method
from invoice_mailer.watch.watcher import Watcher
from tests.support.helpers import wait_until
from tests.support.watchsink import EventSink

Make = Callable[..., tuple[Watcher, EventSink]]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """As in watchdog's own tests: a test that leaves an observer thread running fails."""
    before = set(threading.enumerate())
    yield
    wait_until(lambda: set(threading.enumerate()) <= before, timeout=5)


@pytest.fixture
def make(folder: Path) -> Iterator[Make]:
    watchers: list[Watcher] = []

    def make_watcher(**options: object) -> tuple[Watcher, EventSink]:
        options = {"method": "events", "poll_interval": 0.05, **options}
        sink = EventSink(folder)
        watcher = Watcher(WatchConfig(folder=folder, **options), sink)  # type: ignore[arg-type]
        watchers.append(watcher)
        return watcher, sink

    yield make_watcher
    for watcher in watchers:
        watcher.stop()


def test_file_written_in_place_reports_created_modified_closed(folder: Path, make: Make) -> None:
    watcher, sink = make()
    watcher.start()
    (folder / "Fattura_1_2026_C042.pdf").write_bytes(b"%PDF-1.4\n" * 100)
    wait_until(lambda: "closed" in sink.of("Fattura_1_2026_C042.pdf"))
    assert sink.of("Fattura_1_2026_C042.pdf")[:2] == ["created", "modified"]
    assert watcher.reports_close


def test_temp_file_renamed_into_place_is_moved_in_and_the_temp_name_is_not_reported(
    folder: Path, make: Make
) -> None:
    watcher, sink = make()
    watcher.start()
    (folder / "x.tmp").write_bytes(b"%PDF-1.4\n")
    os.rename(folder / "x.tmp", folder / "x.pdf")
    wait_until(lambda: sink.of("x.pdf"))
    assert sink.of("x.pdf") == ["moved_in"]
    assert sink.of("x.tmp") == []


def test_file_renamed_in_from_another_folder_is_moved_in(
    tmp_path: Path, folder: Path, make: Make
) -> None:
    # Without this, inotify reports a plain "created" that would wait for a close in vain.
    outside = tmp_path / "staging"
    outside.mkdir()
    (outside / "y.pdf").write_bytes(b"%PDF-1.4\n")
    watcher, sink = make()
    watcher.start()
    os.rename(outside / "y.pdf", folder / "y.pdf")
    wait_until(lambda: sink.of("y.pdf"))
    assert sink.of("y.pdf") == ["moved_in"]


def test_upper_case_matches_and_ignored_names_are_not_reported(folder: Path, make: Make) -> None:
    watcher, sink = make()
    watcher.start()
    for name in ("~$foo.pdf", ".hidden.pdf", "x.pdf.part", "notes.txt", "FATTURA.PDF"):
        (folder / name).write_bytes(b"data")
    (folder / "last.xml").write_bytes(b"<x/>")  # events arrive in order: this one comes last
    wait_until(lambda: "closed" in sink.of("last.xml"))
    assert sink.names() == {"FATTURA.PDF", "last.xml"}


def test_subfolder_files_are_reported_only_when_recursive(folder: Path, make: Make) -> None:
    (folder / "sub").mkdir()
    (folder / ".recycle").mkdir()  # Samba's recycle bin: deleted files are not new documents
    flat, flat_sink = make()
    deep, deep_sink = make(recursive=True)
    flat.start()
    deep.start()
    (folder / ".recycle" / "deleted.pdf").write_bytes(b"old")
    (folder / "sub" / "a.pdf").write_bytes(b"%PDF")
    (folder / "top.pdf").write_bytes(b"%PDF")
    wait_until(lambda: "closed" in flat_sink.of("top.pdf") and "closed" in deep_sink.of("top.pdf"))
    wait_until(lambda: "closed" in deep_sink.of(os.path.join("sub", "a.pdf")))
    assert flat_sink.names() == {"top.pdf"}
    assert deep_sink.names() == {"top.pdf", os.path.join("sub", "a.pdf")}


@pytest.mark.parametrize("method", ["events", "polling"])
def test_a_thousand_files_copied_at_once_are_all_reported(
    tmp_path: Path, folder: Path, make: Make, method: str
) -> None:
    source = tmp_path / "source.pdf"
    source.write_bytes(b"%PDF-1.4\n" * 50)
    watcher, sink = make(method=method)
    watcher.start()
    names = {f"Fattura_{n}_2026_C{n:03d}.pdf" for n in range(1000)}
    for name in names:
        shutil.copy(source, folder / name)
    wait_until(lambda: sink.names() >= names, timeout=15)
    assert sink.names() == names
    assert watcher.reports_close is (method == "events")


def test_scan_finds_files_present_before_start(folder: Path, make: Make) -> None:
    (folder / "old.pdf").write_bytes(b"%PDF")
    (folder / "old.XML").write_bytes(b"<x/>")
    (folder / "~$old.pdf").write_bytes(b"lock")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.pdf").write_bytes(b"%PDF")
    (folder / "dir.pdf").mkdir()  # named like a document: the intake refuses it and says so once
    os.symlink("/etc/passwd", folder / "link.pdf")  # passed on, never followed
    flat, flat_sink = make()
    deep, deep_sink = make(recursive=True)
    assert flat.scan() == 4
    assert set(flat_sink.events) == {
        ("old.pdf", "scan"),
        ("old.XML", "scan"),
        ("dir.pdf", "scan"),
        ("link.pdf", "scan"),
    }
    deep.scan()
    assert os.path.join("sub", "deep.pdf") in deep_sink.names()


def test_start_on_a_missing_folder_says_so(tmp_path: Path) -> None:
    config = WatchConfig(folder=tmp_path / "nowhere", method="events")
    watcher = Watcher(config, lambda path, event: None)
    with pytest.raises(InvoiceMailerError, match=r"cannot watch .*nowhere: it does not exist"):
        watcher.start()
    watcher.stop()


def test_a_failing_sink_does_not_kill_the_observer(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def sink(path: str, event: str) -> None:
        if os.path.basename(path) == "boom.pdf":
            raise RuntimeError("sink broke")
        seen.append(os.path.basename(path))

    watcher = Watcher(WatchConfig(folder=folder, method="events"), sink)
    watcher.start()
    try:
        (folder / "boom.pdf").write_bytes(b"%PDF")
        (folder / "fine.pdf").write_bytes(b"%PDF")
        wait_until(lambda: "fine.pdf" in seen)
    finally:
        watcher.stop()
    assert "could not pass on created event" in caplog.text


@pytest.mark.parametrize("method", ["events", "polling"])
def test_folder_that_vanishes_and_comes_back_is_watched_again_and_rescanned(
    folder: Path, make: Make, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="invoice_mailer.watch.watcher")
    watcher, sink = make(method=method)
    watcher.start()
    watcher.supervise(0.0)
    shutil.rmtree(folder)
    watcher.supervise(1.0)
    watcher.supervise(2.0)  # still gone: nothing new to say
    folder.mkdir()
    (folder / "dropped-while-down.pdf").write_bytes(b"%PDF")
    watcher.supervise(3.0)
    assert sink.of("dropped-while-down.pdf") == ["scan"]
    (folder / "after.pdf").write_bytes(b"%PDF")
    wait_until(lambda: "created" in sink.of("after.pdf"))
    stopped = [r.getMessage() for r in caplog.records if "watcher stopped" in r.getMessage()]
    assert stopped == [f"watcher stopped ({folder} is missing); restarting"]
    assert "watcher restarted" in caplog.text


def test_folder_replaced_by_a_new_one_is_watched_again(
    folder: Path, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    # inotify follows the old folder's inode: the new folder would be watched by no one.
    watcher, sink = make()
    watcher.start()
    watcher.supervise(0.0)
    folder.rename(folder.with_name("export.old"))
    folder.mkdir()
    watcher.supervise(1.0)
    (folder / "new.pdf").write_bytes(b"%PDF")
    wait_until(lambda: "created" in sink.of("new.pdf"))
    assert f"watcher stopped ({folder} was replaced by another folder); restarting" in caplog.text


def test_observer_thread_that_died_is_restarted_and_the_rescan_finds_missed_files(
    folder: Path, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    watcher, sink = make()
    watcher.start()
    watcher.supervise(0.0)
    observer = watcher._observer  # simulate watchdog #1065: the observer ends on its own
    assert observer is not None
    observer.stop()
    observer.join()
    (folder / "missed.pdf").write_bytes(b"%PDF")
    watcher.supervise(1.0)
    assert sink.of("missed.pdf") == ["scan"]
    assert "watcher stopped (its thread ended); restarting" in caplog.text
    (folder / "next.pdf").write_bytes(b"%PDF")
    wait_until(lambda: "created" in sink.of("next.pdf"))


def test_supervise_rescans_every_rescan_seconds(folder: Path, make: Make) -> None:
    (folder / "old.pdf").write_bytes(b"%PDF")
    watcher, sink = make(rescan=10.0)
    watcher.start()
    watcher.supervise(100.0)  # the service scanned right after start; the clock starts here
    watcher.supervise(109.0)
    assert sink.of("old.pdf") == []
    watcher.supervise(110.0)
    assert sink.of("old.pdf") == ["scan"]
    watcher.supervise(115.0)
    watcher.supervise(120.0)
    assert sink.of("old.pdf") == ["scan", "scan"]


def test_supervise_does_nothing_after_stop(folder: Path, make: Make) -> None:
    watcher, sink = make(rescan=1.0)
    watcher.start()
    watcher.supervise(0.0)
    watcher.stop()
    (folder / "late.pdf").write_bytes(b"%PDF")
    watcher.supervise(10.0)
    assert sink.events == []


# choose_method: pure when given the text of /proc/self/mountinfo.
MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda1 rw
40 27 0:50 / /srv/share rw,relatime shared:5 - cifs //pc-ufficio/export rw,vers=3.1.1
41 40 254:1 / /srv/share/local rw,relatime - ext4 /dev/vdb1 rw
42 27 0:51 / /mnt/nas rw,relatime - nfs4 nas:/fatture rw,vers=4.2
43 27 0:52 / /mnt/my\\040share rw,relatime - cifs //pc/a\\040b rw
44 27 0:53 / /mnt/sftp rw,relatime - fuse.sshfs user@host:/x rw
45 27 0:54 / /srv/over rw,relatime - cifs //pc/over rw
46 27 254:2 / /srv/over rw,relatime - xfs /dev/vdc1 rw
"""


NET = " (network filesystem)"


@pytest.mark.parametrize(
    ("folder", "method", "reason"),
    [
        ("/srv/share/export", "polling", "polling: /srv/share/export is on cifs" + NET),
        ("/srv/share", "polling", "polling: /srv/share is on cifs" + NET),
        ("/srv/share/local/export", "events", "events: /srv/share/local/export is on ext4"),
        ("/srv/sharex/export", "events", "events: /srv/sharex/export is on ext4"),
        ("/mnt/nas/in", "polling", "polling: /mnt/nas/in is on nfs4" + NET),
        ("/mnt/my share/in", "polling", "polling: /mnt/my share/in is on cifs" + NET),
        ("/mnt/sftp", "polling", "polling: /mnt/sftp is on fuse.sshfs" + NET),
        ("/srv/over/in", "events", "events: /srv/over/in is on xfs"),  # mounted on top of cifs
        ("/home/fatture", "events", "events: /home/fatture is on ext4"),
    ],
)
def test_choose_method_auto(folder: str, method: str, reason: str) -> None:
    config = WatchConfig(folder=Path(folder), method="auto")
    assert choose_method(config, MOUNTINFO) == (method, reason)


@pytest.mark.parametrize("method", ["events", "polling"])
def test_choose_method_explicit_wins(method: str) -> None:
    config = WatchConfig(folder=Path("/srv/share/export"), method=method)
    assert choose_method(config, MOUNTINFO) == (method, f"{method}: set by watch.method")


def test_auto_reads_this_machines_mount_table(folder: Path) -> None:
    watcher = Watcher(WatchConfig(folder=folder, method="auto"), lambda path, event: None)
    assert watcher.method in ("events", "polling")
    assert watcher.reason.startswith(f"{watcher.method}: {folder} is on ")
