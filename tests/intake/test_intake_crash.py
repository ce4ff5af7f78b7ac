"""Crashes during intake: no file lost, none taken twice, every spool file with its row.

The states a crash can leave are built first one by one (each from a real take, cut where
the crash would cut it); then a child process running the intake is killed with SIGKILL at
random moments while files keep arriving.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from invoice_mailer import storage
from invoice_mailer.ledger.database import Ledger
from tests.support.configs import base_config
from tests.support.helpers import drop, wait_until
from tests.support.intake_harness import (
    IntakeRunner,
    intake_config,
    pdf_bytes,
    sha256,
    spool_files,
)

ROOT = Path(__file__).resolve().parents[2]


def check_spool_matches_ledger(state_dir: Path) -> list[dict]:
    """Every spooled file has its row and every row in the spool its file; hashes agree."""
    with Ledger(state_dir, readonly=True) as ledger:
        rows = [dict(row) for row in ledger.query("SELECT * FROM documents ORDER BY id")]
    assert spool_files(state_dir) == {row["location"] for row in rows}
    for row in rows:
        assert sha256((state_dir / row["location"]).read_bytes()) == row["sha256"], row["name"]
    return rows


# -- each crash window, one at a time -----------------------------------------------------


def test_spool_file_without_a_row_is_adopted_with_its_check(tmp_path, folder, caplog):
    """Crash after the rename into the spool, before the row: the file is adopted at start."""
    caplog.set_level(logging.INFO, logger="invoice_mailer")
    config = intake_config(tmp_path)
    storage.prepare(config.state_dir)
    spool = config.state_dir / storage.SPOOL
    (spool / storage.spool_name("good.pdf")).write_bytes(pdf_bytes("good"))
    (spool / storage.spool_name("cut.pdf")).write_bytes(b"%PDF-1.4 cut")
    with IntakeRunner(config):
        pass
    rows = {row["name"]: row for row in check_spool_matches_ledger(config.state_dir)}
    assert (rows["good.pdf"]["state"], rows["good.pdf"]["source"]) == (
        "taken",
        str(folder / "good.pdf"),
    )
    assert (rows["cut.pdf"]["state"], rows["cut.pdf"]["reason"]) == (
        "failed",
        "PDF is incomplete (no %%EOF at the end)",
    )
    assert "recovered good.pdf after an interrupted intake" in caplog.text


def cut_after_commit(config, name: str) -> Path:
    """Undo the last step of a committed copy: the state a crash before its rename leaves."""
    with Ledger(config.state_dir, readonly=True) as ledger:
        (location,) = ledger.one("SELECT location FROM documents WHERE name = ?", name)
    final = config.state_dir / location
    partial = final.with_name(f".{final.name}.part")
    final.rename(partial)
    return partial


def test_keep_copy_committed_but_not_renamed_is_finished_not_taken_again(tmp_path, folder):
    config = intake_config(tmp_path, originals="keep")
    original = drop(folder, "kept.pdf", pdf_bytes("kept"))
    with IntakeRunner(config) as runner:
        wait_until(lambda: runner.documents("kept.pdf"))
    partial = cut_after_commit(config, "kept.pdf")
    with IntakeRunner(config) as runner:
        drop(folder, "later.pdf", pdf_bytes("later"))
        wait_until(lambda: runner.documents("later.pdf"))
        assert len(runner.documents("kept.pdf")) == 1
    assert not partial.exists() and original.exists()
    check_spool_matches_ledger(config.state_dir)


def test_copy_cut_before_its_row_is_dropped_and_the_original_taken(tmp_path, folder):
    """Crash during the copy (or before its commit): the .part goes, the source is taken."""
    config = intake_config(tmp_path, originals="keep")
    storage.prepare(config.state_dir)
    data = pdf_bytes("half")
    original = drop(folder, "half.pdf", data)
    partial = config.state_dir / storage.SPOOL / f".{storage.spool_name('half.pdf')}.part"
    partial.write_bytes(data[:10])
    with IntakeRunner(config) as runner:
        (row,) = wait_until(lambda: runner.documents("half.pdf"))
    assert not partial.exists() and original.read_bytes() == data
    assert row["sha256"] == sha256(data)
    check_spool_matches_ledger(config.state_dir)


def test_cross_filesystem_move_cut_before_the_unlink_removes_the_source(
    tmp_path, other_filesystem, caplog
):
    """Copy committed, source not yet removed: at start the source goes, nothing twice.

    A copy kept with `originals: keep` and the service restarted with `move` is that state.
    """
    caplog.set_level(logging.INFO, logger="invoice_mailer")
    original = drop(other_filesystem, "far.pdf", pdf_bytes("far"))
    with IntakeRunner(
        intake_config(tmp_path, folder=str(other_filesystem), originals="keep")
    ) as runner:
        (row,) = wait_until(lambda: runner.documents("far.pdf"))
    cut_after_commit(runner.config, "far.pdf")
    config = intake_config(tmp_path, folder=str(other_filesystem), originals="move")
    with IntakeRunner(config) as runner:
        wait_until(lambda: not original.exists())
        drop(other_filesystem, "next.pdf", pdf_bytes("next"))
        wait_until(lambda: runner.documents("next.pdf"))
        assert len(runner.documents("far.pdf")) == 1
        # next.pdf's own row lives from its commit until its source is unlinked: wait for it.
        wait_until(lambda: runner.ledger.query("SELECT * FROM originals") == [])
    assert f"removing {original}: already taken as document {row['id']}" in caplog.text
    check_spool_matches_ledger(config.state_dir)


# -- SIGKILL at random moments ------------------------------------------------------------


class Producer(threading.Thread):
    """Drops a new document every `interval` s (deadline-paced): renamed in, or written in place."""

    def __init__(self, folder: Path, interval: float = 0.015):
        super().__init__(name="producer")
        self.folder, self.interval = folder, interval
        self.files: dict[str, bytes] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        start, number = time.monotonic(), 0
        while not self.stop.wait(max(0.0, start + number * self.interval - time.monotonic())):
            name = f"Fattura_{number}_2026_C{number % 7:03d}.pdf"
            data = pdf_bytes(f"doc {number}", size=2000 + 37 * number)
            self.files[name] = data
            if number % 2:
                drop(self.folder, name, data)
            else:
                (self.folder / name).write_bytes(data)
            number += 1


class Child:
    """tests/support/intake_child.py as a process; its log is kept for the failure message."""

    def __init__(self, config: Path, log: Path):
        self.log = log
        with open(log, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.intake_child", str(config)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
            )

    def wait_ready(self, timeout: float = 10) -> None:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready and self.process.stdout.readline() == b"ready\n", self.log.read_text()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process.stdout.close()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(10)
        self.process.stdout.close()
        return code


def crash_config(tmp_path: Path, folder: Path, originals: str) -> Path:
    watch = {"folder": str(folder), "settle": "0.1s", "method": "events", "originals": originals}
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path, watch=watch), sort_keys=False))
    return path


@pytest.mark.parametrize("originals", ["move", "keep", "move-across"])
def test_sigkill_at_random_moments_loses_nothing_and_takes_nothing_twice(
    tmp_path, folder, originals, request
):
    kills = 24 if originals == "move" else 12
    if originals == "move-across":
        folder = request.getfixturevalue("other_filesystem")
    config = crash_config(tmp_path, folder, originals.split("-")[0])
    state_dir = tmp_path / "state"
    log = tmp_path / "child.log"
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    producer = Producer(folder)
    producer.start()
    try:
        for kill in range(kills):
            child = Child(config, log)
            # One kill in four during start-up and recovery; the others while the files that
            # arrived meanwhile are being taken (due `settle` after "ready").
            if kill % 4:
                child.wait_ready()
            time.sleep(rng.uniform(0.0, 0.4))  # the random moment, not a synchronisation
            child.kill()
    finally:
        producer.stop.set()
        producer.join()
    child = Child(config, log)
    try:

        def all_taken() -> bool:
            with Ledger(state_dir, readonly=True) as ledger:
                names = {row[0] for row in ledger.query("SELECT name FROM documents")}
            return names >= set(producer.files)

        wait_until(all_taken, 20)
    finally:
        assert child.terminate() == 0, log.read_text()
    context = f"seed {seed}; child log:\n{log.read_text()[-3000:]}"
    rows = check_spool_matches_ledger(state_dir)
    counts = collections.Counter(row["name"] for row in rows)
    assert counts == collections.Counter(producer.files.keys()), context
    for row in rows:
        assert (row["state"], row["sha256"]) == ("taken", sha256(producer.files[row["name"]]))
    left = set(os.listdir(folder))
    assert left == (set(producer.files) if originals == "keep" else set()), context
    assert not [n for n in os.listdir(state_dir / storage.SPOOL) if n.startswith(".")]
