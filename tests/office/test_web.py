"""`invoice-mailer web` as a process, asked over HTTP as a browser would: headers, the CSV for
Excel, downloads only by id, refusals, read-only. The main flows in a real browser are in
test_web_browser.py."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from invoice_mailer.ledger.database import Ledger
from tests.office.conftest import COPY, HOSTILE, PDFS, ROSSI, SDI_ID, XML
from tests.support.cli import run_cli
from tests.support.webprocess import WebProcess, free_port


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own loopback page)
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def web(filled_office):
    with WebProcess(filled_office.config) as process:
        yield process


def ledger_bytes(state_dir) -> str:
    return hashlib.sha256((state_dir / "ledger.db").read_bytes()).hexdigest()


def test_every_page_forbids_scripts_framing_and_caching(web):
    for path in ("/", "/?q=201", "/documento/1", "/registro", "/in-attesa", "/non-inviati"):
        status, headers, _body = get(web.url + path)
        assert status == 200, path
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src" not in policy  # no script at all, not even our own
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"


def id_of(state_dir, name: str) -> int:
    with Ledger(state_dir, readonly=True) as ledger:
        return ledger.scalar("SELECT id FROM documents WHERE name = ?", name)


def test_the_hostile_file_name_is_escaped_everywhere(web, filled_office):
    hostile = id_of(filled_office.state_dir, HOSTILE)
    for path in ("/?q=onerror", "/in-attesa", f"/documento/{hostile}"):
        _status, _headers, body = get(web.url + path)
        page = body.decode()
        assert "<img src=x" not in page, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, path


def test_the_register_as_csv_opens_in_excel(web, filled_office):
    month = datetime.date.today().strftime("%Y-%m")
    status, headers, body = get(f"{web.url}/registro.csv?mese={month}")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))
    heading, lines = rows[0], rows[1:]
    assert heading[:3] == ["Preso in carico il", "File", "Tipo"]
    assert sorted(line[1] for line in lines) == sorted([*PDFS, XML, HOSTILE])
    rossi = next(line for line in lines if line[1] == PDFS[0])
    assert rossi[7] == "Società Rossi S.p.A." and rossi[10] == "rossi@pec.rossi.example"
    assert rossi[11] == "archivio@ufficio.example" and rossi[13].startswith("<")
    assert b"\r\n" in body
    last_month = (datetime.date.today().replace(day=1) - datetime.timedelta(days=1)).strftime(
        "%Y-%m"
    )
    _status, _headers, empty = get(f"{web.url}/registro.csv?mese={last_month}")
    assert len(empty.decode("utf-8-sig").strip().splitlines()) == 1  # the headings only


def test_a_formula_in_a_cell_is_shown_as_text():
    from invoice_mailer.office.csvexport import cell

    assert cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert cell("-2+3") == "'-2+3" and cell("@SUM(A1)") == "'@SUM(A1)"
    assert cell("Fattura_1.pdf") == "Fattura_1.pdf" and cell(None) == ""


@pytest.mark.parametrize(
    "path",
    [
        "/documento/999/messaggio/1.eml",
        "/documento/1/ricevuta/999.eml",  # no such receipt
        "/documento/1/ricevuta/..%2f..%2fledger.db",
        "/documento/../../etc/passwd",
        "/static/../ledger.db",
        "/documento/1/messaggio/%2e%2e%2fledger.db",
    ],
)
def test_files_only_by_id_never_by_a_path(web, path):
    status, _headers, body = get(web.url + path)
    assert status == 404, (path, status)
    assert b"SQLite format" not in body and b"root:" not in body


def test_a_message_is_downloaded_only_through_a_document_it_carries(web, filled_office):
    with Ledger(filled_office.state_dir, readonly=True) as ledger:
        pair = ledger.one(
            "SELECT a.document_id, b.delivery_id FROM attachments a, attachments b "
            "WHERE NOT EXISTS (SELECT 1 FROM attachments c WHERE c.delivery_id = b.delivery_id "
            "AND c.document_id = a.document_id) LIMIT 1"
        )
    document, delivery = pair
    assert get(f"{web.url}/documento/{document}/messaggio/{delivery}.eml")[0] == 404
    with Ledger(filled_office.state_dir, readonly=True) as ledger:
        own = ledger.scalar("SELECT document_id FROM attachments WHERE delivery_id = ?", delivery)
    assert get(f"{web.url}/documento/{own}/messaggio/{delivery}.eml")[0] == 200


def receipt_ids(state_dir) -> dict[str, int]:
    with Ledger(state_dir, readonly=True) as ledger:
        return {row["kind"]: row["id"] for row in ledger.query("SELECT id, kind FROM receipts")}


def test_the_story_shows_each_proof_and_downloads_its_receipt_by_id(web, filled_office):
    rossi, xml = id_of(filled_office.state_dir, PDFS[0]), id_of(filled_office.state_dir, XML)
    ids = receipt_ids(filled_office.state_dir)
    page = get(f"{web.url}/documento/{rossi}")[2].decode()
    assert f"Ricevuta di avvenuta consegna per {ROSSI}: consegnata il 12/03/2026 alle" in page
    assert f"Ricevuta di accettazione per {ROSSI}, {COPY}: accettata il 12/03/2026 alle" in page
    delivered = f"/documento/{rossi}/ricevuta/{ids['avvenuta-consegna']}.eml"
    assert f'href="{delivered}"' in page
    status, headers, data = get(web.url + delivered)
    assert status == 200 and data == filled_office.receipts["consegna"]  # the exact bytes read
    assert headers["Content-Type"] == "message/rfc822"
    assert headers["Content-Disposition"].startswith("attachment")
    # The XML: SdI's outcome, its IdentificativoSdI, and the notice itself.
    page = get(f"{web.url}/documento/{xml}")[2].decode()
    assert "SdI: RC, ricevuta di consegna, il 12/03/2026 alle" in page
    assert f"identificativo SdI {SDI_ID}" in page
    notice = f"/documento/{xml}/ricevuta/{ids['sdi-RC']}.eml"
    assert get(web.url + notice)[2] == filled_office.receipts["sdi"]
    # A receipt only through the document it is about.
    assert get(f"{web.url}/documento/{rossi}/ricevuta/{ids['sdi-RC']}.eml")[0] == 404
    assert get(f"{web.url}/documento/{xml}/ricevuta/{ids['accettazione']}.eml")[0] == 404


def test_a_receipt_the_ledger_places_outside_receipts_is_never_served(tmp_path, filled_office):
    """A ledger someone edited: a receipt's path names the ledger itself, or a link under
    receipts/ leads out of it. Neither is served."""
    state = tmp_path / "state"
    shutil.copytree(filled_office.state_dir, state)
    settings = yaml.safe_load(filled_office.config.read_text())
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**settings, "state_dir": str(state)}))
    (state / "receipts" / "link.eml").symlink_to(state / "ledger.db")
    ids = receipt_ids(state)
    db = sqlite3.connect(state / "ledger.db")
    db.execute("UPDATE receipts SET path = 'ledger.db' WHERE kind = 'accettazione'")
    db.execute("UPDATE receipts SET path = 'receipts/link.eml' WHERE kind = 'avvenuta-consegna'")
    db.commit()
    db.close()
    rossi = id_of(state, PDFS[0])
    with WebProcess(config) as web:
        for kind in ("accettazione", "avvenuta-consegna"):
            status, _headers, body = get(f"{web.url}/documento/{rossi}/ricevuta/{ids[kind]}.eml")
            assert status == 404, kind
            assert b"SQLite format" not in body
        # The untouched one is still served: the refusals above are not a broken route.
        assert (
            get(f"{web.url}/documento/{id_of(state, XML)}/ricevuta/{ids['sdi-RC']}.eml")[0] == 200
        )


def test_the_page_changes_nothing(web, filled_office):
    before = ledger_bytes(filled_office.state_dir)
    for path in ("/?q=fattura", "/documento/1", "/registro", "/non-inviati", "/in-attesa"):
        get(web.url + path)
    request = urllib.request.Request(web.url + "/?q=201", data=b"x=1", method="POST")  # noqa: S310 (ours)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 (our own loopback page)
    assert refused.value.code == 405
    assert ledger_bytes(filled_office.state_dir) == before


def test_a_ledger_nobody_writes_is_read_without_creating_files(filled_office):
    """A stopped service leaves no -wal/-shm; the unit's read-only folder forbids making them."""
    with Ledger(filled_office.state_dir, immutable=True) as ledger:
        assert ledger.scalar("SELECT COUNT(*) FROM documents") == 5
        with pytest.raises(Exception, match="readonly"):
            ledger.db.execute("DELETE FROM documents")


def test_off_loopback_without_users_it_refuses_to_start(filled_office):
    process = WebProcess(filled_office.config, listen=f"0.0.0.0:{free_port()}")
    result = subprocess.run(
        [sys.executable, "-m", "invoice_mailer", "-c", str(process.config), "web"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78, result.stderr
    assert "web.users: the page would listen on 0.0.0.0:" in result.stderr
    assert "invoice-mailer hash-password" in result.stderr


def test_bad_web_settings_are_listed_with_their_lines(tmp_path, filled_office):
    text = filled_office.config.read_text() + (
        "web:\n  listen: nowhere\n  users:\n    anna: secret\n  trusted_proxy: proxy\n"
    )
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = run_cli("-c", str(config), "web")
    assert result.returncode == 78
    lines = result.stderr.splitlines()
    assert "3 problems" in lines[0]
    assert any("web.listen: expected host:port" in line for line in lines)
    assert any(
        "web.users: anna: not a hash from `invoice-mailer hash-password`" in line for line in lines
    )
    assert any("web.trusted_proxy: expected the proxy's IP address" in line for line in lines)
    assert all(line.strip().startswith("line ") for line in lines[1:])


def test_hash_password_makes_a_hash_the_login_accepts():
    from invoice_mailer.office.passwords import check_password

    made = run_cli("hash-password", stdin="correct horse battery\n")
    assert made.returncode == 0, made.stderr
    hashed = made.stdout.strip()
    assert hashed.startswith("scrypt$") and "correct horse" not in hashed
    assert check_password("correct horse battery", hashed)
    assert not check_password("correct horse batterY", hashed)
    short = run_cli("hash-password", stdin="short\n")
    assert short.returncode == 78 and "at least 8 characters" in short.stderr
