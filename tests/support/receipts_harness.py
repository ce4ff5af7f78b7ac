"""The real service reading receipts from the private Dovecot (tests/support/dovecot.py) while
it sends to a real SMTP server: its config, an invoice sent to a PEC customer, and the ledger's
view of each recipient's proof."""

from __future__ import annotations

from pathlib import Path

from invoice_mailer.demo.samples import make_pdf
from tests.support.dovecot import PASSWORD, DovecotServer
from tests.support.helpers import drop, wait_until
from tests.support.receiptmail import SENDER
from tests.support.reliability_harness import query
from tests.support.service_harness import service_config, write_address_book

PEC_CUSTOMER = "cliente@pec.bianchi.it"
MAIL_CUSTOMER = "amministrazione@verdi.example"
COPY = "archivio@pec.studiorossi.it"
CUSTOMERS = [
    ("C001", "Bianchi S.r.l.", "", PEC_CUSTOMER, "", ""),
    ("C002", "Verdi S.n.c.", MAIL_CUSTOMER, "", "", ""),
]


def receipts_config(tmp_path: Path, server, dovecot: DovecotServer, **sections) -> Path:
    """Our sender is the Dovecot user; every receipt kind's builder writes to it."""
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    imap = {
        "host": "127.0.0.1",
        "port": dovecot.tls_port,
        "security": "tls",
        "password": PASSWORD,
        "ca_file": str(dovecot.ca),
        "timeout": "10s",
    }
    extra = dict(sections.pop("receipts", {}))
    imap.update(extra.pop("imap", {}))
    receipts = {"imap": imap, "poll": "2s", "pec": True, **extra}
    return service_config(
        tmp_path,
        server,
        sender={"address": SENDER, "name": "Studio Rossi"},
        customers={"address_book": str(book), "prefer": "pec"},
        receipts=receipts,
        **sections,
    )


def send_invoice(tmp_path: Path, number: int, code: str = "C001") -> dict:
    """Drop an invoice for `code` and wait until its customer message is sent; that row."""
    name = f"Fattura_{number}_2026_{code}.pdf"
    drop(tmp_path / "export", name, make_pdf(text=f"Fattura {number}"))
    sql = (
        "SELECT v.* FROM deliveries v JOIN attachments a ON a.delivery_id = v.id "
        "JOIN documents d ON d.id = a.document_id WHERE d.name = ? AND v.purpose = 'customer'"
    )
    return wait_until(
        lambda: next(
            (row for row in query(tmp_path / "state", sql, name) if row["state"] == "sent"), None
        ),
        20,
    )


def proofs(tmp_path: Path) -> dict[str, dict]:
    """address → its delivery_recipients row (with the receipt's path), of every message."""
    rows = query(
        tmp_path / "state",
        "SELECT r.*, c.path AS receipt_path, v.message_id FROM delivery_recipients r "
        "JOIN deliveries v ON v.id = r.delivery_id LEFT JOIN receipts c ON c.id = r.receipt_id",
    )
    return {f"{row['message_id']} {row['address']}": row for row in rows}


def proof_of(tmp_path: Path, message_id: str, address: str) -> str | None:
    row = proofs(tmp_path).get(f"{message_id} {address}")
    return row["proof"] if row else None


def receipts_rows(tmp_path: Path) -> list[dict]:
    return query(tmp_path / "state", "SELECT * FROM receipts ORDER BY id")


def cursor_at(tmp_path: Path, uid: int, folder: str = "INBOX") -> bool:
    """Whether the service has looked at every message of `folder` up to `uid`."""
    rows = query(tmp_path / "state", "SELECT last_uid FROM imap_cursors WHERE folder = ?", folder)
    return bool(rows) and rows[0]["last_uid"] >= uid


def notices_text(tmp_path: Path) -> list[str]:
    return [row["text"] for row in query(tmp_path / "state", "SELECT text FROM notices")]


def stored_receipts(tmp_path: Path) -> list[Path]:
    """Every file under state_dir/receipts/ (.part leftovers included)."""
    folder = tmp_path / "state" / "receipts"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
