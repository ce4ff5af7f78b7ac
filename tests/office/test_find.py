"""`status --find` on the office's ledger: each document's story with its proof of delivery,
in the page's words, the stored receipt's path to open; found by a receipt's identificativo or
SdI's number too."""

from __future__ import annotations

import json

from invoice_mailer.ledger.database import Ledger
from tests.office.conftest import COPY, PDFS, ROSSI, SDI_ID, XML
from tests.support.cli import run_cli


def find(filled_office, *args: str):
    shown = run_cli("-c", str(filled_office.config), "status", "--find", *args)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def stored(filled_office) -> dict[str, dict]:
    with Ledger(filled_office.state_dir, readonly=True) as ledger:
        return {row["kind"]: dict(row) for row in ledger.query("SELECT * FROM receipts")}


def test_each_recipients_proof_and_each_receipt_with_its_file(filled_office):
    text = find(filled_office, "201")
    flat = " ".join(text.split())  # the story's lines are wrapped at 80 columns
    assert f"A: {ROSSI}: consegnata il 12/03/2026 alle" in flat
    assert f"Cc: {COPY}: accettata il 12/03/2026 alle" in flat
    assert f"Ricevuta di accettazione per {ROSSI}, {COPY}: accettata il 12/03/2026" in flat
    assert f"Ricevuta di avvenuta consegna per {ROSSI}: consegnata il 12/03/2026" in flat
    receipts = stored(filled_office)
    lines = [line.strip() for line in text.splitlines()]
    for kind in ("accettazione", "avvenuta-consegna"):
        path = filled_office.state_dir / receipts[kind]["path"]
        assert str(path) in lines  # a line of its own, never wrapped: to be opened or copied
    assert path.read_bytes() == filled_office.receipts["consegna"]


def test_the_json_has_the_same_story(filled_office):
    report = json.loads(find(filled_office, "201", "--json"))
    (document,) = report["documents"]
    story = document["story"]
    receipts = {r["kind"]: r for r in story["receipts"]}
    delivered = receipts["avvenuta-consegna"]
    assert delivered["at"].startswith("2026-03-12T") and delivered["recipient"] == ROSSI
    (customer,) = story["messages"]
    rossi = next(r for r in customer["recipients"] if r["address"] == ROSSI)
    assert (rossi["proof"], rossi["receipt_id"], rossi["receipt"]) == (
        "delivered",
        delivered["id"],
        delivered["path"],
    )
    assert rossi["words"].startswith("consegnata il 12/03/2026 alle")
    steps = [(s["kind"], s["receipt_id"]) for s in story["steps"] if s["receipt_id"]]
    assert steps == [("receipt", receipts["accettazione"]["id"]), ("receipt", delivered["id"])]


def test_found_by_a_receipts_identificativo_and_by_sdis_number(filled_office):
    identificativo = stored(filled_office)["avvenuta-consegna"]["provider_id"]
    assert identificativo.endswith("@pec.aruba.it")
    shown = find(filled_office, identificativo)
    assert "1 document(s) match" in shown and f"{PDFS[0]}: done" in shown
    text = find(filled_office, SDI_ID)
    assert '1 document(s) match "4501237":' in text and XML in text
    flat = " ".join(text.split())
    assert "SdI: RC, ricevuta di consegna, il 12/03/2026 alle" in flat
    assert f"identificativo SdI {SDI_ID}" in flat
