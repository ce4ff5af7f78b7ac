"""Issue 13.13: invoices, messages and the ledger are readable only by the service's user,
whatever umask it inherits and whatever modes an existing state folder has."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from pathlib import Path

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import Supervisor
from tests.support.service_harness import service_config, write_address_book

CUSTOMERS = [("C042", "Mario Rossi S.p.A.", "mario@rossi.example", "", "IT01234567890", "")]


@contextlib.contextmanager
def umask(mask: int):
    """The umask a careless unit or shell gives the service (inherited by the child)."""
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


def open_to_others(root: Path) -> list[str]:
    """Every entry under root (itself included) with a group or other permission bit."""
    found = []
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):  # -wal and -shm come and go
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            if mode & 0o077:
                found.append(f"{path.relative_to(root)} {mode:04o}")
    return found


def test_state_folder_made_by_hand_with_umask_022_becomes_private(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    state = tmp_path / "state"
    with umask(0o022):
        (state / "sent" / "2025" / "12").mkdir(parents=True, mode=0o755)
        old = state / "sent" / "2025" / "12" / "Fattura_1_2025_C042.pdf"
        old.write_bytes(make_pdf(text="Fattura 1 2025"))
        state.chmod(0o755)
        assert open_to_others(state)
        check = subprocess.run(
            [sys.executable, "-m", "invoice_mailer", "-c", str(config), "check"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        assert f"state_dir {state} is open to other local users (mode 0755)" in check.stderr
        service = Supervisor(config).start()
    try:
        drop(tmp_path / "export", "Fattura_5_2026_C042.pdf", make_pdf(text="Fattura 5"))
        smtp_server.wait_for_messages(1, timeout=20)
        wait_until(lambda: list((state / "sent").rglob("Fattura_5_2026_C042.pdf")), 15)
        assert (state / "ledger.db-wal").exists()
        assert open_to_others(state) == []
    finally:
        assert service.stop() == 0
    assert open_to_others(state) == []
    assert "took group and other permissions off" in service.log()
