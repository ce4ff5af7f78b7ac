"""TLS that cannot be trusted: an untrusted certificate, a certificate for another host, a
server that hides STARTTLS. Nothing is sent, not even the password: the server's record of
every command shows no AUTH and no message bytes, and the queue pauses with a clear reason."""

from __future__ import annotations

import pytest

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import FIGURES, Supervisor, query
from tests.support.service_harness import service_config, write_address_book

USER, PASSWORD = "fatture@example.it", "Segreto-PEC-2026"
CUSTOMERS = [("C001", "Alfa S.r.l.", "alfa@clienti.example", "", "", "")]
NEVER = {"AUTH", "MAIL", "RCPT", "DATA", "BDAT"}
CASES = {
    # case: (server security, which certificate, hide STARTTLS, what the pause says)
    "trusted": ("tls", "server", False, None),
    "untrusted certificate": ("tls", "self_signed", False, "self-signed certificate"),
    "wrong host name": ("tls", "wrong_host", False, "Hostname mismatch"),
    "STARTTLS not offered": ("starttls", "server", True, "does not offer STARTTLS"),
}
_tried: list[str] = []


@pytest.mark.parametrize("case", list(CASES))
def test_untrustworthy_tls_sends_nothing(tmp_path, start_smtp_server, smtp_certs, case):
    security, cert, hide_starttls, reason = CASES[case]
    server = start_smtp_server(security, cert=getattr(smtp_certs, cert), users={USER: PASSWORD})
    server.offer_starttls(not hide_starttls)
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path,
        server,
        smtp={
            "host": "localhost",  # the name the certificate must carry (server: localhost)
            "security": security,
            "password": PASSWORD,
            "ca_file": str(smtp_certs.ca),
        },
        customers={"address_book": str(book), "prefer": "email"},
    )
    state = tmp_path / "state"
    with Supervisor(config) as service:
        drop(tmp_path / "export", "Fattura_1_2026_C001.pdf", make_pdf(text=f"Fattura, {case}"))
        if reason is None:  # the control: the same setup with a good certificate works
            (received,) = server.wait_for_messages(1, timeout=15)
            assert received.login == USER and received.tls
            return
        (pause,) = wait_until(lambda: query(state, "SELECT reason FROM pauses"), 15)
        log = service.log()
        assert service.running()
    assert reason in pause["reason"], pause["reason"]
    assert "sending is paused" in log and reason in log
    assert PASSWORD not in log
    commands = server.commands
    assert not NEVER & set(commands), commands
    assert server.messages == []
    (delivery,) = query(state, "SELECT state FROM deliveries")
    assert delivery["state"] in ("queued", "sending")  # waiting, not failed
    assert query(state, "SELECT state FROM documents") == [{"state": "routed"}]
    _tried.append(f"{case} (commands seen: {' '.join(commands) or 'none'})")
    print(f"\nTLS, {case}: paused ({pause['reason'][:90]}…); commands seen: {commands}")
    FIGURES.set("TLS refusals (no AUTH, no message bytes)", "; ".join(_tried))
