"""The intake with the real watchdog observer on real folders, feeding the real ledger.

Every wait has a deadline; "exactly once" is proven after a later sentinel file went through
the same path (the intake handles events in order, so anything still due was handled first).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from invoice_mailer import storage
from tests.support.helpers import drop, wait_until
from tests.support.hostile import BILLION_LAUGHS, xxe
from tests.support.intake_harness import (
    IntakeRunner,
    intake_config,
    pdf_bytes,
    sha256,
    spool_files,
)
from tests.support.service_harness import ServiceProcess, service_config

MB = 1024 * 1024


def settle_with_sentinel(runner: IntakeRunner, folder: Path, label: str = "sentinel") -> None:
    """Drop one more file and wait until it is taken: everything seen before it is handled."""
    drop(folder, f"{label}.pdf", pdf_bytes(label))
    wait_until(lambda: runner.documents(f"{label}.pdf"), 10)


# -- how files arrive ---------------------------------------------------------------------


class SlowWriter(threading.Thread):
    """Writes `data` to `path` in small chunks over `duration` s, on a deadline schedule.

    After each chunk it notes whether the file was still in the folder: a file taken before it
    is complete would vanish under the writer (it keeps writing through its descriptor).
    """

    def __init__(self, path: Path, data: bytes, duration: float, chunk: int = 16 * 1024):
        super().__init__(name="slow-writer")
        self.path, self.data, self.duration, self.chunk = path, data, duration, chunk
        self.vanished_at: int | None = None
        self.done = threading.Event()

    def run(self) -> None:
        chunks = range(0, len(self.data), self.chunk)
        start = time.monotonic()
        with open(self.path, "wb") as out:
            for number, offset in enumerate(chunks):
                delay = start + self.duration * number / len(chunks) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing the writer, not synchronising the test
                out.write(self.data[offset : offset + self.chunk])
                out.flush()
                if self.vanished_at is None and not self.path.exists():
                    self.vanished_at = offset
        self.done.set()


@pytest.mark.parametrize("method", ["events", "polling"])
def test_big_pdf_written_slowly_is_taken_once_when_complete(tmp_path, folder, method):
    config = intake_config(tmp_path, method=method, poll_interval="0.05s", settle="0.5s")
    data = pdf_bytes("big", size=5 * MB)
    target = folder / "Fattura_1_2026_C042.pdf"
    with IntakeRunner(config) as runner:
        writer = SlowWriter(target, data, duration=3.0)
        writer.start()
        writer.join(10)
        assert writer.done.is_set()
        (row,) = wait_until(lambda: runner.documents(target.name), 10)
        settle_with_sentinel(runner, folder)
        assert writer.vanished_at is None, f"taken while only {writer.vanished_at} bytes long"
        assert len(runner.documents(target.name)) == 1
    assert (row["state"], row["size"], row["sha256"]) == ("taken", len(data), sha256(data))
    assert (config.state_dir / row["location"]).read_bytes() == data
    assert not target.exists()


def test_temporary_name_renamed_is_taken_once_under_its_final_name(tmp_path, folder):
    config = intake_config(tmp_path)
    data = pdf_bytes("x")
    with IntakeRunner(config) as runner:
        (folder / "x.tmp").write_bytes(data)
        (folder / "x.tmp").rename(folder / "x.pdf")
        wait_until(lambda: runner.documents("x.pdf"))
        settle_with_sentinel(runner, folder)
        (row,) = runner.documents("x.pdf")
        assert [r["name"] for r in runner.documents()] == ["x.pdf", "sentinel.pdf"]
    assert row["sha256"] == sha256(data)
    assert row["source"] == str(folder / "x.pdf")


@pytest.mark.parametrize("method", ["events", "polling"])
def test_a_thousand_files_copied_at_once_are_each_taken_once(tmp_path, folder, method):
    config = intake_config(tmp_path, method=method, poll_interval="0.1s")
    outside = tmp_path / "outside"
    outside.mkdir()
    contents = {f"Fattura_{n}_2026_C{n % 50:03d}.pdf": pdf_bytes(f"n{n}") for n in range(1000)}
    for name, data in contents.items():
        (outside / name).write_bytes(data)
    with IntakeRunner(config) as runner:
        for name in contents:
            shutil.copyfile(outside / name, folder / name)
        wait_until(lambda: len(runner.documents()) >= 1000, 60)
        settle_with_sentinel(runner, folder)
        rows = runner.documents()
    taken = {row["name"]: row for row in rows if row["name"] != "sentinel.pdf"}
    assert len(rows) == 1001 and set(taken) == set(contents)
    assert all(taken[name]["sha256"] == sha256(data) for name, data in contents.items())
    assert spool_files(config.state_dir) == {row["location"] for row in rows}
    assert os.listdir(folder) == []


def test_files_present_before_start_are_taken_after_the_same_checks(tmp_path, folder):
    config = intake_config(tmp_path)
    (folder / "a.pdf").write_bytes(pdf_bytes("a"))
    (folder / "b.xml").write_bytes(b"<?xml version='1.0'?><FatturaElettronica/>")
    (folder / "c.pdf").write_bytes(b"%PDF-1.4 cut short")
    with IntakeRunner(config) as runner:
        wait_until(lambda: len(runner.documents()) == 3, 10)
        states = {row["name"]: (row["state"], row["reason"]) for row in runner.documents()}
    assert states["a.pdf"] == ("taken", None)
    assert states["b.xml"] == ("taken", None)
    assert states["c.pdf"] == ("failed", "PDF is incomplete (no %%EOF at the end)")


def test_file_dropped_while_the_observer_is_stopped_is_found_by_the_rescan(tmp_path, folder):
    config = intake_config(tmp_path, rescan="0.3s")
    with IntakeRunner(config) as runner:
        settle_with_sentinel(runner, folder, "before")
        runner.watcher.stop()
        drop(folder, "missed.pdf", pdf_bytes("missed"))
        runner.watcher.start()  # no event will ever name missed.pdf now
        wait_until(lambda: runner.documents("missed.pdf"), 10)
        assert runner.scans_of("missed.pdf") >= 1


# -- what is never read -------------------------------------------------------------------


class FifoProbe(threading.Thread):
    """Keeps trying to open the FIFO as a writer without blocking: ENXIO means no reader."""

    def __init__(self, fifo: Path):
        super().__init__(name="fifo-probe")
        self.fifo, self.stop, self.attempts, self.reader_seen = fifo, threading.Event(), 0, False

    def run(self) -> None:
        while not self.stop.wait(0.005):
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO
                self.attempts += 1
            else:
                os.close(fd)
                self.reader_seen = True


def test_symlink_fifo_hard_link_and_folder_are_never_read_nor_block(tmp_path, folder, caplog):
    caplog.set_level(logging.INFO, logger="invoice_mailer")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret, linked = outside / "secret.pdf", outside / "linked.pdf"
    secret.write_bytes(pdf_bytes("symlink target"))
    linked.write_bytes(pdf_bytes("hard link"))
    old = 1_000_000_000  # atime far before mtime: any read would move it (relatime)
    for path in (secret, linked):
        os.utime(path, ns=(old, path.stat().st_mtime_ns))
    (folder / "link.pdf").symlink_to(secret)
    os.mkfifo(folder / "a.pdf")
    os.link(linked, folder / "hard.pdf")
    (folder / "b.pdf").mkdir()
    (folder / "b.pdf" / "inside.pdf").write_bytes(pdf_bytes("inside"))
    probe = FifoProbe(folder / "a.pdf")
    probe.start()
    try:
        config = intake_config(tmp_path, rescan="0.1s")
        with IntakeRunner(config) as runner:
            # Present at start, seen again by every rescan: each refused, each logged once.
            wait_until(lambda: min(runner.scans_of(n) for n in ("link.pdf", "a.pdf")) >= 3, 10)
            settle_with_sentinel(runner, folder, "ok")
            assert [row["name"] for row in runner.documents()] == ["ok.pdf"]
    finally:
        probe.stop.set()
        probe.join()
    assert probe.attempts > 0 and not probe.reader_seen
    for path in (secret, linked):
        assert path.stat().st_atime_ns == old
    assert (folder / "link.pdf").is_symlink() and (folder / "hard.pdf").stat().st_nlink == 2
    assert (folder / "b.pdf" / "inside.pdf").exists()
    spooled = b"".join(p.read_bytes() for p in (config.state_dir / "spool").iterdir())
    assert b"symlink target" not in spooled and b"hard link" not in spooled
    ignoring = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ignoring")]
    assert sorted(ignoring) == sorted(
        [
            f"ignoring {folder / 'link.pdf'}: it is a symbolic link; it is left where it is "
            "and never read",
            f"ignoring {folder / 'a.pdf'}: it is not a regular file (FIFO, socket or device); "
            "it is left where it is and never read",
            f"ignoring {folder / 'hard.pdf'}: it has 2 hard links (another name could change "
            "it); it is left where it is and never read",
            f"ignoring {folder / 'b.pdf'}: it is a folder; it is left where it is and never read",
        ]
    )


def test_a_file_becoming_a_symlink_after_it_was_seen_is_not_followed(tmp_path, folder):
    config = intake_config(tmp_path, settle="0.5s")
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(pdf_bytes("secret"))
    with IntakeRunner(config) as runner:
        (folder / "swap.pdf").write_bytes(pdf_bytes("innocent"))
        wait_until(lambda: ("swap.pdf", "closed") in runner.offers)  # seen, settling
        (folder / "swap.pdf").unlink()
        (folder / "swap.pdf").symlink_to(secret)
        settle_with_sentinel(runner, folder)
        assert [row["name"] for row in runner.documents()] == ["sentinel.pdf"]
    assert (folder / "swap.pdf").is_symlink()


def test_a_name_that_is_not_utf8_is_taken_with_a_readable_name(tmp_path, folder):
    config = intake_config(tmp_path)
    raw = os.fsencode(folder) + b"/Fattura_Soci\xe9t\xe0.pdf"  # Latin-1 bytes from old Samba
    with IntakeRunner(config) as runner:
        with open(raw, "wb") as out:
            out.write(pdf_bytes("latin1"))
        (row,) = wait_until(lambda: runner.documents(), 10)
    assert row["name"] == "Fattura_Soci\ufffdt\ufffd.pdf"
    assert (config.state_dir / row["location"]).read_bytes() == pdf_bytes("latin1")


# -- originals and duplicates -------------------------------------------------------------


def test_keep_takes_a_copy_once_across_rescans_and_restarts(tmp_path, folder, caplog):
    caplog.set_level(logging.INFO, logger="invoice_mailer")
    config = intake_config(tmp_path, originals="keep", rescan="0.1s")
    data = pdf_bytes("kept")
    original = drop(folder, "Fattura_9_2026_C001.pdf", data)
    with IntakeRunner(config) as runner:
        (row,) = wait_until(lambda: runner.documents(original.name))
        wait_until(lambda: runner.scans_of(original.name) >= 3)
        settle_with_sentinel(runner, folder, "one")
    with IntakeRunner(config) as runner:  # a restart: the ledger remembers what was copied
        settle_with_sentinel(runner, folder, "two")
        assert len(runner.documents(original.name)) == 1
        os.utime(original)  # the same content saved again: a new file, same SHA-256
        (again,) = wait_until(lambda: runner.documents(original.name)[1:], 10)
    assert original.read_bytes() == data  # the original is left alone
    assert (config.state_dir / row["location"]).read_bytes() == data
    # Taken again: whether it was already sent to its customer is routing's to decide.
    assert (row["state"], again["state"], again["duplicate_of"]) == ("taken", "taken", None)


def test_duplicate_content_under_another_name_is_taken_for_routing_to_judge(tmp_path, folder):
    config = intake_config(tmp_path)
    with IntakeRunner(config) as runner:
        drop(folder, "first.pdf", pdf_bytes("same"))
        wait_until(lambda: runner.documents("first.pdf"))
        drop(folder, "second.pdf", pdf_bytes("same"))
        (second,) = wait_until(lambda: runner.documents("second.pdf"))
    # Same bytes are not "already sent": that needs the customer (tests/routing/test_duplicates.py).
    assert (second["state"], second["duplicate_of"]) == ("taken", None)


def test_move_across_filesystems_copies_then_removes_the_original(tmp_path, other_filesystem):
    config = intake_config(tmp_path, folder=str(other_filesystem))
    data = pdf_bytes("far")
    with IntakeRunner(config) as runner:
        drop(other_filesystem, "far.pdf", data)
        (row,) = wait_until(lambda: runner.documents("far.pdf"))
        wait_until(lambda: not (other_filesystem / "far.pdf").exists())
    assert (config.state_dir / row["location"]).read_bytes() == data
    assert row["sha256"] == sha256(data)
    assert not [p for p in os.listdir(config.state_dir / storage.SPOOL) if p.startswith(".")]
    with IntakeRunner(config) as runner:
        assert runner.ledger.query("SELECT * FROM originals") == []


# -- through the real service: failed/ with the reason -------------------------------------


def test_bad_documents_end_in_failed_with_a_reason_through_the_service(
    tmp_path, folder, start_smtp_server
):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a9c")
    bad = {
        "Fattura_1_2026_C001.pdf": (pdf_bytes("cut")[:-12], "PDF is incomplete (no %%EOF"),
        "IT01234567890_0000A.xml": (
            b"<FatturaElettronica><a></FatturaElettronica>",
            "not well-formed",
        ),
        "IT01234567890_0000B.xml": (BILLION_LAUGHS, "XML declares a DTD, which is refused"),
        "IT01234567890_0000C.xml": (xxe(str(secret)), "XML declares a DTD, which is refused"),
    }
    config = service_config(tmp_path, start_smtp_server("none"))
    state_dir = tmp_path / "state"
    with ServiceProcess(config) as service:
        for name, (data, _reason) in bad.items():
            drop(folder, name, data)
        for name, (data, reason) in bad.items():
            reason_file = state_dir / "failed" / f"{name}.reason.txt"
            wait_until(reason_file.exists, 15)
            assert reason in reason_file.read_text(), name
            assert (state_dir / "failed" / name).read_bytes() == data
        drop(folder, "ok.pdf", pdf_bytes("still working"))
        wait_until(lambda: service.query("SELECT 1 FROM documents WHERE name = 'ok.pdf'"), 10)
        log = service.log()
    assert "Fattura_1_2026_C001.pdf is not sendable yet" in log  # re-checked before failing
    assert os.listdir(folder) == []
    everything = [p.read_bytes() for p in state_dir.rglob("*") if p.is_file()]
    assert not [data for data in everything if b"TOP-SECRET" in data]
    assert "TOP-SECRET" not in log


# -- re-checks and trouble ----------------------------------------------------------------


def test_a_pdf_whose_end_comes_late_is_rechecked_and_taken_whole(tmp_path, folder, caplog):
    caplog.set_level(logging.INFO, logger="invoice_mailer")
    config = intake_config(tmp_path, settle="0.5s")  # re-checks after 0.5 s, then 1 s
    data = pdf_bytes("late end", size=50_000)
    target = folder / "late.pdf"
    with IntakeRunner(config) as runner:
        target.write_bytes(data[:30_000])  # a writer that closed, then comes back
        wait_until(lambda: "late.pdf is not sendable yet" in caplog.text)
        with open(target, "ab") as out:
            out.write(data[30_000:])
        (row,) = wait_until(lambda: runner.documents("late.pdf"), 10)
        settle_with_sentinel(runner, folder)
        assert len(runner.documents("late.pdf")) == 1
    assert (row["state"], row["sha256"]) == ("taken", sha256(data))


def test_oversize_and_unreadable_files_fail_at_once_and_the_intake_goes_on(
    tmp_path, folder, caplog
):
    caplog.set_level(logging.INFO, logger="invoice_mailer")
    config = intake_config(tmp_path, smtp={"max_message_size": "10KB"})
    with IntakeRunner(config) as runner:
        huge = drop(folder, "huge.pdf", pdf_bytes("huge", size=20_000)).stat().st_size
        drop(folder, "odd.xml", b'<?xml version="1.0" encoding="klingon"?><a/>')
        wait_until(lambda: len(runner.documents()) == 2, 10)
        settle_with_sentinel(runner, folder)
        rows = {row["name"]: row for row in runner.documents()}
    assert rows["huge.pdf"]["state"] == "failed"
    assert rows["huge.pdf"]["reason"] == (
        f"the file is {huge:,} bytes, over smtp.max_message_size (10,000)"
    )
    assert "huge.pdf is not sendable yet" not in caplog.text  # no re-checks: it cannot shrink
    assert (rows["odd.xml"]["state"], rows["odd.xml"]["reason"]) == (
        "failed",
        "the file cannot be read as XML: unknown encoding: klingon",
    )


def test_a_missing_spool_is_repaired_and_the_file_taken_later(
    tmp_path, folder, caplog, monkeypatch
):
    monkeypatch.setattr("invoice_mailer.intake.events.RETRY_DELAY", 0.3)
    caplog.set_level(logging.INFO, logger="invoice_mailer")
    config = intake_config(tmp_path)
    with IntakeRunner(config) as runner:
        shutil.rmtree(config.state_dir / "spool")  # an admin's cleanup gone wrong
        drop(folder, "a.pdf", pdf_bytes("a"))
        (row,) = wait_until(lambda: runner.documents("a.pdf"), 10)
    assert f"cannot take {folder / 'a.pdf'} right now: No such file or directory" in caplog.text
    assert (config.state_dir / row["location"]).read_bytes() == pdf_bytes("a")
