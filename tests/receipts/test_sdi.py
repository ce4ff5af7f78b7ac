"""SdI notices: each of RC, NS, MC, NE, DT, AT read from the PEC an SdI box sends (XML, .p7m,
or an AT in a zip), with NomeFile, IdentificativoSdI, the errors, the outcome and PecMessageId;
a notice from anyone but SdI is recognised as such."""

from __future__ import annotations

from datetime import timedelta

import pytest

from invoice_mailer.receipts.mail import Unrecognised
from invoice_mailer.receipts.sdi import NoticeKind, SdiError, SdiMail, parse_notice, parse_sdi_mail
from tests.support.receiptmail import our_message, pec_receipt, transport_envelope
from tests.support.sdimail import sdi_mail, sdi_notice, signed_p7m

FILE = "IT01234567890_00001.xml"
PEC_ID = "opec21019.20260312101532.01234.612.1.53@pec.aruba.it"


def notices(data: bytes) -> SdiMail:
    result = parse_sdi_mail(data)
    assert isinstance(result, SdiMail), result
    return result


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_each_notice_kind_names_the_file_and_its_sdi_number(kind):
    xml = sdi_notice(kind, FILE, "4501237", pec_message_id=PEC_ID)
    got = notices(sdi_mail(xml, f"IT01234567890_00001_{kind}_001.xml", kind))
    assert got.from_sdi and got.certified_sender == "sdi01@pec.fatturapa.it"
    (notice,) = got.notices
    assert notice.kind is kind
    assert notice.file_name == FILE
    assert notice.sdi_id == "4501237"
    assert notice.notice_name == f"IT01234567890_00001_{kind}_001.xml"
    assert notice.pec_message_id == PEC_ID
    assert notice.message_id is not None


def test_scarto_lists_every_error():
    errors = (("00404", "Fattura duplicata"), ("00423", "Imponibile non congruente"))
    (notice,) = notices(
        sdi_mail(sdi_notice("NS", errors=errors), "IT01234567890_00001_NS_001.xml", "NS")
    ).notices
    hint = "Verificare il numero e la data"
    assert notice.errors == (
        SdiError("00404", "Fattura duplicata", hint),
        SdiError("00423", "Imponibile non congruente", hint),
    )
    assert notice.received_at is not None
    assert notice.received_at.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("outcome", ["EC01", "EC02"])
def test_esito_gives_the_customers_answer(outcome):
    xml = sdi_notice("NE", outcome=outcome)
    (notice,) = notices(sdi_mail(xml, "IT01234567890_00001_NE_001.xml", "NE")).notices
    assert notice.outcome == outcome
    assert notice.description == "Importo non dovuto"


def test_ricevuta_di_consegna_has_both_times():
    (notice,) = notices(sdi_mail(sdi_notice("RC"), "IT01234567890_00001_RC_001.xml", "RC")).notices
    assert notice.received_at is not None and notice.delivered_at is not None
    assert notice.delivered_at > notice.received_at


def test_a_p7m_signed_notice_is_opened():
    p7m = signed_p7m(sdi_notice("MC"))
    (notice,) = notices(sdi_mail(p7m, "IT01234567890_00001_MC_001.xml.p7m", "MC")).notices
    assert notice.kind is NoticeKind.MC
    assert notice.description == "Casella PEC del destinatario piena"


def test_an_attestazione_in_a_zip_with_the_invoice():
    data = sdi_mail(
        sdi_notice("AT"), "IT01234567890_00001_AT_001.xml", "AT", zip_name="IT01234567890_00001.zip"
    )
    (notice,) = notices(data).notices
    assert notice.kind is NoticeKind.AT and notice.file_name == FILE


def test_a_notice_from_another_pec_box_is_not_from_sdi():
    data = sdi_mail(sdi_notice("NS"), "IT01_NS_001.xml", "NS", sender="truffatore@pec.example.it")
    got = notices(data)
    assert not got.from_sdi
    assert got.certified_sender == "truffatore@pec.example.it"


def test_a_notice_outside_any_pec_envelope_has_no_certified_sender():
    # The SdI message alone, as an ordinary mailbox would get a copy of it.
    inner = sdi_mail(sdi_notice("RC"), "IT01_RC_001.xml", "RC")
    envelope_free = inner.split(b'filename="postacert.eml"\r\n\r\n', 1)[1]
    got = notices(envelope_free)
    assert got.certified_sender is None and not got.from_sdi


@pytest.mark.parametrize(
    "data",
    [
        our_message("<a@b.it>", "c@d.it"),
        pec_receipt("accettazione", "<a@b.it>"),
        transport_envelope(our_message("<a@b.it>", "c@d.it")),
        b"",
    ],
    ids=["ordinary", "pec receipt", "ordinary pec", "empty"],
)
def test_mail_without_notices(data):
    result = parse_sdi_mail(data)
    assert isinstance(result, Unrecognised) and result.reason.startswith("no SdI notice")


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (b"<FatturaElettronica/>", "not an SdI notice"),
        (b"<NotificaScarto><NomeFile>x.xml</NomeFile></NotificaScarto>", "lacks NomeFile"),
        (b'<!DOCTYPE x [<!ENTITY e "e">]><NotificaScarto/>', "refused for safety"),
        (b"<NotificaScarto>", "not well-formed"),
        (b"\x30\x82garbage", "not a signed p7m envelope"),
    ],
)
def test_broken_notices_say_why(xml, reason):
    result = parse_sdi_mail(sdi_mail(xml, "IT01_NS_001.xml", "NS"))
    assert isinstance(result, Unrecognised) and reason in result.reason


def test_a_zip_bomb_is_refused_by_size():
    huge = b"<NotificaScarto>" + b" " * (6 * 1024 * 1024) + b"</NotificaScarto>"
    data = sdi_mail(huge, "IT01_AT_001.xml", "AT", zip_name="IT01.zip")
    result = parse_sdi_mail(data)
    assert isinstance(result, Unrecognised) and "too large" in result.reason


def test_parse_notice_alone():
    notice = parse_notice(sdi_notice("DT"), "IT01234567890_00001_DT_001.xml")
    assert notice.kind is NoticeKind.DT and notice.description == "Decorsi i termini"
