"""How the intake hands thousands of waiting files to the ledger: the first alone, so that it
can be routed and sent at once, then in batches that double up to BATCH."""

from __future__ import annotations

from pathlib import Path

from invoice_mailer.intake.events import BATCH, Intake
from invoice_mailer.ledger.database import Ledger
from tests.support.intake_harness import intake_config, pdf_bytes

WAITING = 300


def waiting_files(folder: Path) -> list[Path]:
    paths = [folder / f"Fattura_{n}_2026_C042.pdf" for n in range(WAITING)]
    for n, path in enumerate(paths):
        path.write_bytes(pdf_bytes(f"waiting {n}"))
    return paths


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_files_waiting_at_start_are_recorded_one_first_then_in_doubling_batches(
    tmp_path: Path, folder: Path
) -> None:
    config = intake_config(tmp_path)
    paths, clock, recorded = waiting_files(folder), Clock(), []
    with Ledger(config.state_dir) as ledger:

        def count() -> None:  # after each commit: how many documents the worker can route now
            recorded.append(ledger.scalar("SELECT COUNT(*) FROM documents"))

        intake = Intake(config, ledger, clock=clock, on_taken=count)
        intake.recover()  # as at start: the spool is made
        for path in paths:
            intake.offer(str(path), "scan")  # as the service's scan at start names them
        assert intake.step(max_wait=0) == 0  # seen; stable only after `settle`
        clock.now += config.watch.settle
        assert intake.step(max_wait=0) == WAITING
    sizes = [after - before for before, after in zip([0, *recorded], recorded, strict=False)]
    assert sizes == [1, 2, 4, 8, 16, 32, 64, BATCH, WAITING - 127 - BATCH]
    assert not any(path.exists() for path in paths)


def test_stopping_between_batches_leaves_the_rest_in_the_folder_for_the_next_start(
    tmp_path: Path, folder: Path
) -> None:
    config = intake_config(tmp_path)
    paths, clock = waiting_files(folder), Clock()
    with Ledger(config.state_dir) as ledger:
        asked: list[bool] = []
        intake = Intake(config, ledger, clock=clock, stopping=lambda: len(asked) > 2)
        intake.on_taken = lambda: asked.append(True)
        intake.recover()
        for path in paths:
            intake.offer(str(path), "scan")
        intake.step(max_wait=0)
        clock.now += config.watch.settle
        assert intake.step(max_wait=0) == 1 + 2 + 4  # SIGTERM came after the third batch
        assert sum(path.exists() for path in paths) == WAITING - 7
        assert ledger.scalar("SELECT COUNT(*) FROM documents") == 7
