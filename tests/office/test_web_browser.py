"""The office's main flows in a real browser: Debian's chromium, headless, driven by
Playwright (never a downloaded browser), against the real `invoice-mailer web` process and a
ledger the real service filled. No JavaScript is needed by the page; the browser's is on, to
prove a hostile file name cannot run any."""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from invoice_mailer.office.passwords import hash_password
from tests.office.conftest import HOSTILE, PDFS, ROSSI, SDI_ID, XML
from tests.support.webprocess import WebProcess, free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A persistent context in a fresh --user-data-dir, so nothing of another run is reused."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            accept_downloads=True,
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def web(filled_office):
    with WebProcess(filled_office.config) as process:
        yield process


@pytest.fixture
def page(browser):
    opened = browser.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.dialogs = dialogs
    yield opened
    opened.close()


def search(page, web, text: str) -> list[str]:
    page.goto(web.url + "/")
    page.get_by_label("Numero, cliente").fill(text)
    with page.expect_navigation():  # the results page, not the one the click left
        page.get_by_role("button", name="Cerca").click()
    return page.locator("table.documents td.file").all_inner_texts()


def test_search_by_number_finds_that_number_only(page, web):
    assert search(page, web, "201") == [PDFS[0]]
    assert search(page, web, "Fattura 201") == [PDFS[0]]
    assert search(page, web, "201/2026") == [PDFS[0]]
    assert sorted(search(page, web, "2010")) == [PDFS[1]]


def test_search_by_p_iva_finds_the_xml_and_the_customers_pdf(page, web):
    # The XML carries it; the PDF's customer has it in the address book.
    assert sorted(search(page, web, "IT05556667770")) == sorted([PDFS[2], XML])
    assert sorted(search(page, web, "05556667770")) == sorted([PDFS[2], XML])


def test_search_by_name_ignores_case_and_accents(page, web):
    assert sorted(search(page, web, "societa ROSSI")) == sorted(PDFS[:2])
    assert search(page, web, "Zeta Nessuno") == []
    assert "Nessun documento trovato per «Zeta Nessuno»" in page.inner_text("main")


def test_open_a_document_and_download_the_message_sent(page, web, filled_office):
    search(page, web, "201")
    page.get_by_role("link", name=PDFS[0]).click()
    story = page.inner_text("ol.story")
    assert "trovato per codice C042: da inviare a rossi@pec.rossi.example" in story
    assert "Messaggio al cliente inviato a rossi@pec.rossi.example" in story
    assert "(Cc archivio@ufficio.example)" in story
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Scarica il messaggio inviato (.eml)").click()
    download = waiting.value
    assert download.suggested_filename.endswith(".eml")
    data = Path(download.path()).read_bytes()
    sent = email.message_from_bytes(data)
    assert filled_office.received[sent["Message-ID"]] == data  # the exact bytes sent
    assert sent["Message-ID"] in page.inner_text("section.message")


def test_the_proof_of_delivery_and_its_receipt_the_exact_bytes_read(page, web, filled_office):
    search(page, web, "201")
    page.get_by_role("link", name=PDFS[0]).click()
    story = page.inner_text("ol.story")
    assert f"Ricevuta di avvenuta consegna per {ROSSI}: consegnata il 12/03/2026 alle" in story
    rossi = page.locator("table.recipients tr", has_text=ROSSI)
    assert "consegnata il 12/03/2026 alle" in rossi.inner_text()
    with page.expect_download() as waiting:
        rossi.get_by_role("link", name="ricevuta").click()
    download = waiting.value
    assert download.suggested_filename.endswith(".eml")
    assert Path(download.path()).read_bytes() == filled_office.receipts["consegna"]


def test_search_by_the_sdi_number_shows_the_outcome(page, web):
    assert search(page, web, SDI_ID) == [XML]
    page.get_by_role("link", name=XML).click()
    assert "SdI: RC, ricevuta di consegna, il 12/03/2026 alle" in page.inner_text("dd.sdi")


def test_the_xml_says_why_it_did_not_go_to_the_customer(page, web):
    search(page, web, "IT05556667770")
    page.get_by_role("link", name=XML).click()
    assert "XML non previsto per il cliente (customers.send)" in page.inner_text("ol.story")


def test_a_hostile_file_name_is_shown_as_text_and_runs_nothing(page, web):
    assert search(page, web, "onerror") == [HOSTILE]
    page.get_by_role("link", name=HOSTILE).click()
    assert HOSTILE in page.inner_text("main")
    assert page.locator("main img").count() == 0
    assert "In attesa: cliente sconosciuto" in page.inner_text("ol.story")
    page.goto(web.url + "/in-attesa")
    assert HOSTILE in page.inner_text("main")
    assert page.dialogs == []


def test_on_a_narrow_screen_the_tables_become_cards(page, web):
    page.set_viewport_size({"width": 380, "height": 800})
    search(page, web, "fattura")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 380  # nothing to scroll sideways
    assert page.locator("table.documents thead").is_hidden()


def test_off_loopback_a_login_is_required(browser, filled_office, tmp_path):
    port = free_port()
    users = {"anna": hash_password("una password lunga")}
    with WebProcess(filled_office.config, listen=f"0.0.0.0:{port}", users=users) as web:
        page = browser.new_page()
        page.goto(f"{web.url}/?q=201")
        assert page.url.startswith(f"{web.url}/accesso")
        page.get_by_label("Nome").fill("anna")
        page.get_by_label("Password").fill("sbagliata")
        with page.expect_navigation():
            page.get_by_role("button", name="Entra").click()
        assert "Nome o password sbagliati." in page.inner_text("main")
        page.get_by_label("Nome").fill("anna")
        page.get_by_label("Password").fill("una password lunga")
        with page.expect_navigation():  # read the page the login leads to, not the form
            page.get_by_role("button", name="Entra").click()
        assert page.locator("table.documents td.file").all_inner_texts() == [PDFS[0]]
        (cookie,) = browser.cookies(web.url)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert not cookie["secure"]  # plain HTTP here; Secure under TLS
        page.get_by_role("button", name="Esci (anna)").click()
        page.goto(f"{web.url}/documento/1")
        assert page.url.startswith(f"{web.url}/accesso")
        page.close()
        browser.clear_cookies()


def test_login_attempts_are_limited(browser, filled_office):
    users = {"anna": hash_password("una password lunga")}
    with WebProcess(filled_office.config, listen=f"0.0.0.0:{free_port()}", users=users) as web:
        page = browser.new_page()
        for _attempt in range(5):
            page.goto(f"{web.url}/accesso")
            page.get_by_label("Nome").fill("anna")
            page.get_by_label("Password").fill("indovino")
            with page.expect_navigation():  # each refusal counted before the next try
                page.get_by_role("button", name="Entra").click()
        page.get_by_label("Nome").fill("anna")
        page.get_by_label("Password").fill("una password lunga")  # right, but too late
        response_text = ""
        with page.expect_response(lambda r: r.url.endswith("/accesso")) as answer:
            page.get_by_role("button", name="Entra").click()
        assert answer.value.status == 429
        response_text = page.inner_text("main")
        assert "Troppi tentativi sbagliati: riprovare tra 15 minuti." in response_text
        page.close()
