"""The state directory fills up or becomes read-only while the service runs: it stops taking
files, loses none (they wait in the export folder), says why, and resumes by itself when space
or write access returns. Needs root: a small tmpfs for the full disk, `chattr +i` for a
read-only state directory (root ignores permission bits)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import (
    FIGURES,
    Supervisor,
    consistency_problems,
    hold,
    query,
)
from tests.support.service_harness import service_config, write_address_book

CUSTOMERS = [("C001", "Alfa S.r.l.", "alfa@clienti.example", "", "", "")]
WAITING = 4  # documents dropped while the state directory cannot be written
_seen: dict[str, str] = {}


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.fixture
def small_state(tmp_path) -> Path:
    """tmp_path/state on its own 8 MB tmpfs (a full disk in a second, nothing else affected)."""
    state = tmp_path / "state"
    state.mkdir()
    mounted = run("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(state))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); needs root")
    yield state
    run("umount", "-l", str(state))


def fill(folder: Path) -> Path:
    """Write zeros until the filesystem says ENOSPC; the file is the space to give back."""
    filler = folder / "filler"
    # Unbuffered: a buffered file keeps the part of a chunk that did not fit and fails again
    # when closed, whenever the free space is not a whole number of chunks.
    with open(filler, "wb", buffering=0) as out:
        chunk = bytes(64 * 1024)
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
    with pytest.raises(OSError) as full:
        (folder / "probe").write_bytes(bytes(64 * 1024))
    (folder / "probe").unlink()
    assert full.value.errno == errno.ENOSPC
    return filler


def start(tmp_path, server, **watch) -> Supervisor:
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path, server, customers={"address_book": str(book), "prefer": "email"}, watch=watch
    )
    return Supervisor(config).start()


def blocked_then_resumed(tmp_path, server, service, block, unblock, reason: str) -> None:
    """One invoice goes through; then `block()`, WAITING invoices wait in the folder while the
    reason is logged; then `unblock()`, and all of them are sent, once."""
    export, state = tmp_path / "export", tmp_path / "state"
    drop(export, "Fattura_1_2026_C001.pdf", make_pdf(text="Fattura 1, before"))
    server.wait_for_messages(1, timeout=15)
    wait_until(lambda: query(state, "SELECT state FROM documents") == [{"state": "done"}], 10)
    block()
    names = [f"Fattura_{n}_2026_C001.pdf" for n in range(2, 2 + WAITING)]
    try:
        for number, name in enumerate(names, start=2):
            drop(export, name, make_pdf(text=f"Fattura {number}, while blocked"))
        wait_until(lambda: reason in service.log(), 15)

        def nothing_lost() -> bool:
            waiting = {p.name for p in export.iterdir()} | {
                row["name"] for row in query(state, "SELECT name FROM documents")
            }
            return service.running() and set(names) <= waiting

        hold(3, nothing_lost)
        assert len(server.messages) == 1
    finally:
        unblock()
    server.wait_for_messages(1 + WAITING, timeout=30)
    wait_until(
        lambda: (
            [r["state"] for r in query(state, "SELECT state FROM documents")]
            == ["done"] * (1 + WAITING)
        ),
        20,
    )
    assert len(server.messages) == 1 + WAITING
    sent = [a.get_filename() for m in server.messages[1:] for a in m.message.iter_attachments()]
    assert sorted(sent) == sorted(names)
    assert not list(export.iterdir())
    assert consistency_problems(state) == []
    (line, *_) = [line for line in service.log().splitlines() if reason in line]
    said = re.sub(r"/\S*/", "", line.split(None, 3)[3]).split(";")[0]  # no time, no folders
    _seen[reason] = f"{WAITING} documents waited in the folder (log: '{said}'), then all sent once"


def test_full_state_disk_stops_intake_and_resumes(tmp_path, small_state, start_smtp_server):
    server = start_smtp_server("none")
    # The reserve (watch.min_free_space) stops intake before the disk is full.
    service = start(tmp_path, server, min_free_space="2MB")
    fillers: list[Path] = []
    try:
        blocked_then_resumed(
            tmp_path,
            server,
            service,
            block=lambda: fillers.append(fill(small_state)),
            unblock=lambda: [filler.unlink() for filler in fillers],
            reason="less than watch.min_free_space",  # 8 MB tmpfs filled up
        )
        assert service.stop() == 0
    finally:
        service.stop()
    print(f"\nstate disk full: {_seen['less than watch.min_free_space']}")
    FIGURES.set("disk and permissions", "; ".join(f"{k}: {v}" for k, v in _seen.items()))


def test_read_only_state_directory_stops_intake_and_resumes(tmp_path, start_smtp_server):
    if shutil.which("chattr") is None:
        pytest.skip("chattr not installed (e2fsprogs)")
    server = start_smtp_server("none")
    service = start(tmp_path, server)
    state = tmp_path / "state"
    folders = [str(state / name) for name in ("spool", "outgoing", "sent", "failed")]
    folders.append(str(state))

    def block() -> None:
        done = run("chattr", "+i", *folders)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not possible here: {done.stderr.strip()}")

    try:
        blocked_then_resumed(
            tmp_path,
            server,
            service,
            block=block,
            unblock=lambda: run("chattr", "-i", *folders),
            reason="Operation not permitted",  # chattr +i on the state folders
        )
        assert service.stop() == 0
    finally:
        run("chattr", "-i", *folders)
        service.stop()
    print(f"\nstate directory read-only: {_seen['Operation not permitted']}")
    FIGURES.set("disk and permissions", "; ".join(f"{k}: {v}" for k, v in _seen.items()))
    assert os.access(state, os.W_OK)
