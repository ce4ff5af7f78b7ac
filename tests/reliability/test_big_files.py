"""Issue 13.6: a file over smtp.max_message_size is never copied into state_dir (a sparse 2 GB
file once became 2 GB on disk), and intake waits while state_dir is short of free space."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import Supervisor, query
from tests.support.service_harness import service_config, write_address_book

CUSTOMERS = [("C042", "Mario Rossi S.p.A.", "mario@rossi.example", "", "IT01234567890", "")]
BIG = "Fattura_99_2026_C042.pdf"


def disk_usage(root: Path) -> int:
    """Bytes really allocated under root (a sparse file counts what it uses)."""
    return sum(p.lstat().st_blocks * 512 for p in [root, *root.rglob("*")] if p.exists())


def test_oversized_file_on_another_filesystem_is_recorded_not_copied(
    tmp_path, smtp_server, other_filesystem
):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path,
        smtp_server,
        watch={"folder": str(other_filesystem)},
        smtp={"max_message_size": "1MB"},
        customers={"address_book": str(book), "prefer": "email"},
    )
    state = tmp_path / "state"
    big = other_filesystem / BIG
    with Supervisor(config) as service:
        with open(other_filesystem / f".{BIG}.tmp", "wb") as sparse:
            sparse.truncate(2 * 1024**3)  # 2 GB of zeros that use no memory
        os.rename(other_filesystem / f".{BIG}.tmp", big)
        (row,) = wait_until(lambda: query(state, "SELECT * FROM documents"), 20)
        drop(other_filesystem, "Fattura_3_2026_C042.pdf", make_pdf(text="Fattura 3"))
        (received,) = smtp_server.wait_for_messages(1, timeout=20)
        assert service.running()
        assert service.stop() == 0
    assert row["name"] == BIG and row["state"] == "failed"
    assert row["reason"].startswith("the file is 2,147,483,648 bytes, over smtp.max_message_size")
    assert row["reason"].endswith(f"not copied: it stays where it is, {big}")
    assert big.stat().st_size == 2 * 1024**3  # the original, untouched
    assert disk_usage(state) < 20 * 1024**2  # the ledger and one small invoice, no 2 GB
    assert [received.rcpt_tos] == [("mario@rossi.example",)]
    # A restart does not record it again, and its name stays free for the next file.
    with Supervisor(config, log_name="second.log") as service:
        drop(other_filesystem, "Fattura_4_2026_C042.pdf", make_pdf(text="Fattura 4"))
        smtp_server.wait_for_messages(2, timeout=20)
        assert service.stop() == 0
    assert len(query(state, "SELECT * FROM documents WHERE name = ?", BIG)) == 1


def test_intake_waits_while_state_dir_is_short_of_space(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    free = shutil.disk_usage(tmp_path).free
    config = service_config(
        tmp_path,
        smtp_server,
        watch={"min_free_space": free + 1024**3},  # more than the disk will ever have free
        customers={"address_book": str(book), "prefer": "email"},
    )
    export, state = tmp_path / "export", tmp_path / "state"
    with Supervisor(config) as service:
        drop(export, "Fattura_5_2026_C042.pdf", make_pdf(text="Fattura 5"))
        wait_until(lambda: "less than watch.min_free_space" in service.log(), 20)
        assert (export / "Fattura_5_2026_C042.pdf").exists()  # waiting, not lost
        assert query(state, "SELECT * FROM documents") == []
        (notice,) = query(state, "SELECT text FROM notices")
        assert "new files wait in the export folder until space is freed" in notice["text"]
        assert service.log().count("less than watch.min_free_space") == 1  # said once
        assert service.stop() == 0
    # Space back (here: a smaller reserve after a restart): the file is taken and sent.
    settings = yaml.safe_load(config.read_text())
    settings["watch"]["min_free_space"] = "1MB"
    config.write_text(yaml.safe_dump(settings))
    with Supervisor(config, log_name="second.log") as service:
        (received,) = smtp_server.wait_for_messages(1, timeout=20)
        assert received.rcpt_tos == ("mario@rossi.example",)
        assert not (export / "Fattura_5_2026_C042.pdf").exists()
        assert service.stop() == 0
