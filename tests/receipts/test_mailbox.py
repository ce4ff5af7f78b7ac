"""The mailbox reader against a real Dovecot: each message read once from a cursor, a changed
UIDVALIDITY starts the folder over, TLS verified and required before the password, IDLE, and
the Maildir byte for byte the same afterwards."""

from __future__ import annotations

import functools
import time

import pytest

from invoice_mailer.demo.tlscerts import make_ca
from invoice_mailer.receipts.imapconnect import MailboxError, Security, refuse_changes
from invoice_mailer.receipts.mailbox import Cursor, Fetched, Mailbox, _parse_bodies, _quoted
from tests.support.dovecot import PASSWORD, DovecotServer, needs_dovecot
from tests.support.receiptmail import our_message, pec_receipt

pytestmark = needs_dovecot
BOTH = pytest.mark.parametrize("security", list(Security))


def read(server: DovecotServer, cursor: Cursor | None = None, **options) -> list[Fetched]:
    folder = options.pop("folder", "INBOX")
    with Mailbox(server.account(**options)) as box:
        return list(box.messages(folder, cursor))


@functools.cache  # the same bytes for the same n: they are compared with what is read
def mail(n: int) -> bytes:
    return our_message(f"<{n:08d}@pec.studiorossi.it>", "cliente@pec.bianchi.it")


@BOTH
def test_each_message_is_read_once_from_the_cursor(dovecot, security):
    first = [mail(n) for n in range(3)]
    for data in first:
        dovecot.deliver(data)
    got = read(dovecot, security=security)
    assert [f.data for f in got] == first
    assert [f.uid for f in got] == [1, 2, 3]
    cursor = got[-1].cursor
    later = [mail(n) for n in range(3, 5)]
    for data in later:
        dovecot.deliver(data)
    again = read(dovecot, cursor, security=security)
    assert [f.data for f in again] == later
    assert read(dovecot, again[-1].cursor, security=security) == []


def test_a_changed_uidvalidity_starts_the_folder_over(dovecot):
    for n in range(3):
        dovecot.deliver(mail(n))
    got = read(dovecot)
    dovecot.set_uidvalidity(got[0].uidvalidity + 7)
    again = read(dovecot, got[-1].cursor)
    assert [f.uid for f in again] == [1, 2, 3]
    assert {f.uidvalidity for f in again} == {got[0].uidvalidity + 7}


def test_other_folders_by_name_with_spaces_and_accents(dovecot):
    dovecot.deliver(mail(1), folder="Ricevute PEC")
    dovecot.deliver(mail(2), folder="Gi&AOA- lette")  # "Già lette" on disk (modified UTF-7)
    assert [f.data for f in read(dovecot, folder="Ricevute PEC")] == [mail(1)]
    assert [f.data for f in read(dovecot, folder="Già lette")] == [mail(2)]
    with pytest.raises(MailboxError, match="folder 'Archivio' cannot be opened"):
        read(dovecot, folder="Archivio")


def test_messages_over_the_cap_are_listed_not_fetched(dovecot):
    big = our_message("<big@pec.studiorossi.it>", "c@d.it") + b"x" * 5000 + b"\r\n"
    dovecot.deliver(big)
    dovecot.deliver(mail(1))
    got = read(dovecot, max_message_size=2000)
    assert [(f.uid, f.data is None) for f in got] == [(1, True), (2, False)]
    assert got[0].size == len(big)


@BOTH
def test_a_certificate_from_another_ca_is_refused_before_login(dovecot, tmp_path, security):
    other_ca, _key = make_ca(tmp_path / "other", name="someone else's CA")
    with pytest.raises(MailboxError, match="certificate is not trusted"):
        read(dovecot, security=security, ca_file=other_ca)
    assert "Login:" not in dovecot.log


def test_a_refused_login_says_so_without_the_password(dovecot):
    with pytest.raises(MailboxError, match="refused the login") as refused:
        read(dovecot, password="sbagliata")
    assert "sbagliata" not in str(refused.value) and PASSWORD not in str(refused.value)


def test_no_password_goes_out_when_the_server_offers_no_tls(dovecot_factory):
    plain = dovecot_factory(tls=False)  # it would accept a clear-text login from loopback
    with pytest.raises(MailboxError, match="TLS not supported"):
        read(plain, security=Security.STARTTLS)
    with pytest.raises(MailboxError):
        read(plain, security=Security.TLS, port=plain.starttls_port)
    assert "no auth attempts" in plain.log
    assert "Login:" not in plain.log and "method=" not in plain.log


def test_the_mailbox_is_byte_for_byte_unchanged(dovecot):
    for n in range(4):
        dovecot.deliver(mail(n))
    dovecot.deliver(pec_receipt("accettazione", "<00000001@pec.studiorossi.it>"), "Ricevute")
    seen = dovecot.maildir / "cur" / "1700000000.M1P1Q1.tests:2,S"  # a message already read
    seen.write_bytes(mail(99))
    before = dovecot.snapshot()
    for security in Security:
        read(dovecot, security=security)
        read(dovecot, security=security, folder="Ricevute")
    with Mailbox(dovecot.account()) as box:
        list(box.messages("INBOX"))
        assert box.wait_for_change("INBOX", 0.2) is False
        # Every way of changing the box is refused before it reaches the server.
        for change in (
            lambda: box.imap.store("1", "+FLAGS", "\\Deleted"),
            lambda: box.imap.uid("STORE", "1", "+FLAGS", "(\\Seen)"),
            lambda: box.imap.uid("COPY", "1", "Trash"),
            lambda: box.imap.uid("FETCH", "1", "(BODY[])"),
            lambda: box.imap.expunge(),
            lambda: box.imap.select("INBOX"),
            lambda: box.imap.close(),
        ):
            with pytest.raises(MailboxError, match="read-only"):
                change()
    assert dovecot.snapshot() == before


def test_idle_wakes_up_when_mail_arrives(dovecot):
    dovecot.deliver(mail(1))
    with Mailbox(dovecot.account()) as box:
        assert box.supports_idle
        (first,) = box.messages("INBOX")
        with box.idling() as idle:
            dovecot.deliver(mail(2))
            assert idle.wait(30)
        assert [f.data for f in box.messages("INBOX", first.cursor)] == [mail(2)]


def test_ten_thousand_unrelated_messages_cost_one_pass(dovecot, capsys):
    count = 10_000
    for n in range(count):
        dovecot.deliver(
            f"From: news{n % 37}@example.org\r\nTo: fatture@pec.studiorossi.it\r\n"
            f"Subject: Offerta {n}\r\nMessage-ID: <{n}@example.org>\r\n\r\n"
            f"Testo dell'offerta numero {n}.\r\n".encode()
        )
    started = time.monotonic()
    with Mailbox(dovecot.account()) as box:
        got = list(box.messages("INBOX"))
        first_pass = time.monotonic() - started
        again = list(box.messages("INBOX", got[-1].cursor))
    assert [f.uid for f in got] == list(range(1, count + 1))
    assert again == []
    with capsys.disabled():
        print(
            f"\n{count} messages read in one pass in {first_pass:.1f} s "
            f"({count / first_pass:.0f} a second, {sum(f.size for f in got)} bytes); "
            "the next pass read none"
        )


def test_fetch_answers_with_the_uid_before_or_after_the_body():
    data = [
        (b"1 (UID 11 BODY[] {3}", b"abc"),
        b")",
        (b"2 (BODY[] {3}", b"def"),
        b" UID 12)",
        b"3 (UID 13 FLAGS (\\Seen))",  # unsolicited: no body, ignored
    ]
    assert _parse_bodies(data) == {11: b"abc", 12: b"def"}


@pytest.mark.parametrize(
    "line",
    [
        b"ABCD1 EXAMINE INBOX\r\n",
        b"ABCD2 UID FETCH 1:* (UID RFC822.SIZE)\r\n",
        b"ABCD3 UID FETCH 1,2 (UID BODY.PEEK[])\r\n",
        b"Z1 IDLE\r\n",
        b"DONE\r\n",
        b"AGZvbwBiYXI=\r\n",
    ],
)
def test_read_only_lines_pass(line):
    refuse_changes(line)


@pytest.mark.parametrize(
    "line",
    [
        b"ABCD1 SELECT INBOX\r\n",
        b"ABCD1 STORE 1 +FLAGS (\\Deleted)\r\n",
        b"ABCD1 UID STORE 1 +FLAGS (\\Seen)\r\n",
        b"ABCD1 UID MOVE 1 Trash\r\n",
        b"ABCD1 UID EXPUNGE 1\r\n",
        b"ABCD1 UID FETCH 1 (BODY[])\r\n",
        b"ABCD1 UID FETCH 1 (RFC822)\r\n",
        b"ABCD1 EXPUNGE\r\n",
        b"ABCD1 CLOSE\r\n",
        b"ABCD1 APPEND INBOX {3}\r\n",
        b"ABCD1 DELETE INBOX\r\n",
    ],
)
def test_lines_that_would_change_the_mailbox_are_refused(line):
    with pytest.raises(MailboxError, match="read-only"):
        refuse_changes(line)


def test_folder_names_are_quoted_in_modified_utf7():
    assert _quoted("INBOX") == '"INBOX"'
    assert _quoted("Già lette") == '"Gi&AOA- lette"'
    assert _quoted('Fatture & "note"') == '"Fatture &- \\"note\\""'
