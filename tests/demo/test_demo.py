"""`invoice-mailer demo`, end to end as a newcomer runs it, and its embedded mail server."""

from __future__ import annotations

import email
import imaplib
import itertools
import os
import signal
import smtplib
import ssl
import subprocess
import sys
from dataclasses import replace
from email import policy

import pytest

from invoice_mailer.demo.imapserver import DemoImapServer
from invoice_mailer.demo.mailserver import DemoSmtpServer, make_certificates
from invoice_mailer.demo.pecreceipts import receipts_for
from invoice_mailer.demo.samples import make_pdf
from invoice_mailer.receipts.imapconnect import ImapAccount, MailboxError
from invoice_mailer.receipts.mailbox import Mailbox
from invoice_mailer.receipts.recognise import recognise
from tests.support.helpers import drop, wait_until

ACCOUNTANT = "studio@commercialista.example"


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "invoice_mailer", "demo", *args]


def received_messages(folder) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted((folder / "received").glob("*.eml"))
    ]


def test_demo_delivers_every_sample_says_why_and_removes_its_folder(tmp_path):
    done = subprocess.run(
        demo_command(),
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout.split("Delivered in")[1]
    states = (" sent", " failed", " -", " consegnata", " accettata", " non consegnata")
    states += (" sent in English", " consegnata in English")
    rows = [line for line in table.splitlines() if line.endswith(states)]
    # Every recipient's provider confirmed delivery: the demo's receipts were read.
    assert rows and all(line.endswith((" consegnata", " consegnata in English")) for line in rows)
    for name in ("Fattura_101", "Fattura_102", "Fattura_103", "Ordine_17", "_00101.xml"):
        assert name in table
    # Why the XML did not go to the customer, and what "cc" means.
    assert "customer  not sent: XML non previsto per il cliente (customers.send)" in table
    assert 'cc = the copy of that same message (copy_to, "Copia a")' in table
    # The customer abroad: one row says the language, the copy address is listed once.
    lines = table.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Fattura_103_"))
    # Its rows: the first names the document, the next ones leave that column blank.
    harper = [lines[first], *itertools.takewhile(lambda line: line[:1] == " ", lines[first + 1 :])]
    assert harper[0].endswith("accounts@harper.example         customer  consegnata in English")
    assert [line.split()[-2:] for line in harper[1:]] == [["cc", "consegnata"], ["a", "consegnata"]]
    assert "in English: the customer's language (column Lingua)" in table
    # Nothing is left behind in the temporary folder, and the output says how to keep it.
    assert list(tmp_path.iterdir()) == []
    assert "is removed. To read the 5 messages and try your own files:" in done.stdout
    assert "demo --keep" in done.stdout


def test_demo_keep_shows_the_messages_serves_a_newcomers_own_file_and_stays(tmp_path):
    output = tmp_path / "demo.out"
    with open(output, "w") as out:
        demo = subprocess.Popen(
            demo_command("--keep"),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_until(lambda: "Ctrl-C stops" in output.read_text(), timeout=60)
        (folder,) = tmp_path.glob("invoice-mailer-demo-*")
        shown = output.read_text()
        assert f"The 5 messages the mail server received: {folder}/received/" in shown
        assert f"invoice-mailer -c {folder}/config.yaml status" in shown
        assert f"Drop your own PDF or XML files into {folder}/export" in shown

        messages = received_messages(folder)
        by_recipient = {message["To"]: message for message in messages}
        assert set(by_recipient) == {
            "bianchi@pec.example",  # C001 has both: the PEC is preferred
            "amministrazione@verdi.example",
            "studio.neri@pec.example",
            "accounts@harper.example",  # abroad: Lingua en
            ACCOUNTANT,
        }
        assert all(message["Cc"] == "archivio@rossi-demo.example" for message in messages)
        bundle = by_recipient[ACCOUNTANT]
        names = [a.get_filename() for a in bundle.iter_attachments()]
        assert len(names) == 6 and sum(name.endswith(".xml") for name in names) == 2
        assert bundle["Subject"].endswith("(6)")  # the count is what is attached
        abroad = by_recipient["accounts@harper.example"]
        assert abroad["Subject"].startswith("Invoice no. 103 dated ")  # in English
        assert abroad.get_body(("plain",)).get_content().startswith("Dear Harper & Sons Ltd,")
        customer = by_recipient["bianchi@pec.example"]
        (invoice,) = customer.iter_attachments()
        assert invoice.get_content().startswith(b"%PDF-")
        # RFC 3676's signature separator, with its trailing space, as sent.
        text = customer.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert "\n-- \nRossi S.r.l. - Amministrazione (demo)\n" in text
        assert not list((folder / "export").iterdir())  # everything was taken

        own = drop(folder / "export", "Fattura_1_2026_C002.pdf", make_pdf(text="my own invoice"))

        def mine():
            return [
                message
                for message in received_messages(folder)
                if message["To"] == "amministrazione@verdi.example"
                and "Fattura n. 1 del" in message["Subject"]
            ]

        (message,) = wait_until(mine, timeout=20)
        (attachment,) = message.iter_attachments()
        assert attachment.get_filename() == own.name
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0, output.read_text()
        assert "invoice-mailer stopped" in (folder / "service.log").read_text()
        assert f"The demo folder stays: {folder}" in output.read_text()
    finally:
        if demo.poll() is None:
            # Ctrl-C first: the demo stops its service (a separate session) before it ends.
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()


@pytest.fixture
def demo_server(tmp_path):
    ca, cert, key = make_certificates(tmp_path / "tls")
    with DemoSmtpServer(tmp_path / "received", (cert, key), "me@demo.example", "s3cret") as server:
        yield server, ssl.create_default_context(cafile=str(ca))


def test_demo_server_wants_starttls_and_the_password_like_a_real_provider(tmp_path, demo_server):
    server, trusted = demo_server
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPException):
            client.login("me@demo.example", "s3cret")  # no AUTH before TLS
        code, _ = client.mail("me@demo.example")
        assert code == 530  # STARTTLS first
        client.rset()
        client.starttls(context=trusted)  # the certificate verifies against the demo CA
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("me@demo.example", "wrong")
        client.login("me@demo.example", "s3cret")
        client.sendmail("me@demo.example", ["you@demo.example"], b"Subject: hi\r\n\r\nhello\r\n")
    wait_until(lambda: server.received == 1)
    (stored,) = (tmp_path / "received").glob("*.eml")
    message = email.message_from_bytes(stored.read_bytes(), policy=policy.default)
    assert message["X-Envelope-To"] == "you@demo.example" and message["Subject"] == "hi"
    assert message.get_content().strip() == "hello"


def test_demo_mailbox_serves_the_receipts_read_only_over_tls(tmp_path):
    """The demo's IMAP server, read by the service's own reader: the receipts its PEC
    provider wrote, IDLE, and no command that would change the mailbox."""
    ca, cert, key = make_certificates(tmp_path / "tls")
    sent = b"From: me@demo.example\r\nMessage-ID: <1@demo.example>\r\nSubject: F 1\r\n\r\nx\r\n"
    account = ImapAccount("127.0.0.1", "me@demo.example", "s3cret", ca_file=ca, timeout=10)
    with DemoImapServer((cert, key), "me@demo.example", "s3cret") as server:
        for receipt in receipts_for(sent, "me@demo.example", ["you@demo.example"]):
            server.deliver(receipt)
        wait_until(lambda: server.count == 2)
        account = replace(account, port=server.port)
        with Mailbox(account) as box:
            got = [recognise(fetched.data or b"") for fetched in box.messages("INBOX")]
            assert [(r.kind, r.message_id) for r in got] == [  # type: ignore[union-attr]
                ("accettazione", "<1@demo.example>"),
                ("avvenuta-consegna", "<1@demo.example>"),
            ]
            with box.idling() as idle:
                server.deliver(b"Subject: later\r\n\r\n.\r\n")
                assert idle.wait(10)
        # Any other client too: nothing can change this mailbox.
        context = ssl.create_default_context(cafile=str(ca))
        with imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=context) as other:
            other.authenticate("PLAIN", lambda _: b"\0me@demo.example\0s3cret")
            other.select("INBOX", readonly=True)
            for change in (
                lambda: other.store("1", "+FLAGS", "(\\Deleted)"),
                lambda: other.uid("MOVE", "1", "Trash"),
                lambda: other.expunge(),
                lambda: other.select("INBOX"),
            ):
                assert change()[0] == "NO"
        assert server.count == 3
        with pytest.raises(MailboxError, match="refused the login"):
            Mailbox(replace(account, password="wrong")).__enter__()
