"""Hostile files in the export folder: entity bombs, XXE, external DTDs, huge and truncated
files, links, FIFOs, folders, and names built to break headers or paths. The service keeps
running with bounded memory, reads nothing outside the folder, and puts each where the DESIGN
says: failed/ with a reason, or ignored (left in place) and logged once."""

from __future__ import annotations

import os
import socket

import pytest

from invoice_mailer.demo.samples import make_pdf
from tests.support.fatturapa_samples import make_p7m
from tests.support.helpers import drop, wait_until
from tests.support.hostile import BILLION_LAUGHS, QUADRATIC_BLOWUP, ROOT, XXE, external_dtd
from tests.support.reliability_harness import (
    ENCODED_WORD,
    FIGURES,
    HEADERS,
    PASSWD_MARK,
    Supervisor,
    consistency_problems,
    files_containing,
    hold,
    peak_memory_kb,
    query,
    wire_headers,
)
from tests.support.service_harness import service_config, write_address_book

CUSTOMERS = [("C001", "Alfa S.r.l.", "alfa@clienti.example", "", "IT01234567890", "")]
MEMORY_LIMIT_KB = 200_000  # the service idles near 50 MB; one expanded bomb would be gigabytes


def parameter_entity(url: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE {ROOT} [<!ENTITY % ext SYSTEM "{url}"> %ext;]>\n'
        f"<{ROOT}>x</{ROOT}>\n"
    ).encode()


@pytest.fixture
def dtd_listener():
    """A TCP port where an external DTD would be fetched from: nobody may ever connect."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener


def test_hostile_files_end_where_the_design_says(tmp_path, start_smtp_server, dtd_listener):
    server = start_smtp_server("none")
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path,
        server,
        customers={"address_book": str(book), "prefer": "email"},
        watch={"rescan": "1s"},  # rescans again and again: "logged once" must hold across them
    )
    export, state = tmp_path / "export", tmp_path / "state"
    url = f"http://127.0.0.1:{dtd_listener.getsockname()[1]}/fattura.dtd"
    failing = {  # name -> what the reason file must say
        "IT01234567890_BOMB1.xml": "DTD",
        "IT01234567890_BOMB2.xml": "DTD",
        "IT01234567890_XXE01.xml": "DTD",
        "IT01234567890_DTD01.xml": "DTD",
        "IT01234567890_PENT1.xml": "DTD",
        "IT01234567890_BOMB3.xml.p7m": "DTD",
        "Fattura_50_2026_C001.pdf": "max_message_size",
        "Fattura_20_2026_C001.pdf": "not a PDF",
        "Fattura_21_2026_C001.pdf": "%%EOF",
    }
    ignored = {  # name -> the reason logged once
        "Fattura_1_2026_C001.pdf": "symbolic link",
        "Fattura_2_2026_C001.pdf": "not a regular file",
        "Fattura_3_2026_C001.pdf": "folder",
        "Fattura_4_2026_C001.pdf": "hard links",
    }
    # An invoice number has at most 20 characters (FatturaPA schema), and so has the number
    # group of a name: a tricky one must fit, longer ones fail with that reason.
    tricky = "Fattura_7\nBcc:e@v.it\n..\\.._2026_C001.pdf"
    encoded = f"Fattura_{ENCODED_WORD}_2026_C001.pdf"
    assert "/" not in encoded
    long_name, long_failing = name_of_255_bytes("9"), name_of_255_bytes("8")
    for name in (encoded, long_name, long_failing):
        failing[name] = "number del nome del file è più lungo di 20 caratteri"
    sent = [tricky, "Fattura_100_2026_C001.pdf"]

    with Supervisor(config) as service:
        drop(export, "IT01234567890_BOMB1.xml", BILLION_LAUGHS)
        drop(export, "IT01234567890_BOMB2.xml", QUADRATIC_BLOWUP)
        drop(export, "IT01234567890_XXE01.xml", XXE)
        drop(export, "IT01234567890_DTD01.xml", external_dtd(url))
        drop(export, "IT01234567890_PENT1.xml", parameter_entity(url))
        drop(export, "IT01234567890_BOMB3.xml.p7m", make_p7m(BILLION_LAUGHS))
        for name, megabytes in (("Fattura_50_2026_C001.pdf", 50), ("Fattura_20_2026_C001.pdf", 20)):
            with open(export / name, "wb") as sparse:  # zeros without using the disk
                sparse.truncate(megabytes * 1024 * 1024)
        drop(export, "Fattura_21_2026_C001.pdf", make_pdf(text="Fattura 21")[:-7])
        os.symlink("/etc/passwd", export / "Fattura_1_2026_C001.pdf")
        os.mkfifo(export / "Fattura_2_2026_C001.pdf")
        (export / "Fattura_3_2026_C001.pdf").mkdir()
        drop(export, "Fattura_4_2026_C001.pdf", make_pdf(text="Fattura 4"))
        os.link(export / "Fattura_4_2026_C001.pdf", tmp_path / "second-name.pdf")
        drop(export, tricky, make_pdf(text="Fattura 7"))
        drop(export, encoded, make_pdf(text="Fattura with an encoded word"))
        drop(export, long_name, make_pdf(text="Fattura 999"))
        drop(export, long_failing, make_pdf(text="Fattura 888")[:-7])
        drop(export, "Fattura_100_2026_C001.pdf", make_pdf(text="Fattura 100, after the rest"))

        def settled(count: int) -> bool:
            rows = query(state, "SELECT state, location FROM documents")
            filed = [r for r in rows if not r["location"].startswith("spool/")]
            return len(filed) == count and len(server.messages) >= len(sent)

        wait_until(lambda: settled(len(failing) + len(sent)), 30)
        # The same long name again, other content: the archive must find a name for it too.
        drop(export, long_name, make_pdf(text="Fattura 999, corrected"))
        wait_until(lambda: settled(len(failing) + len(sent) + 1), 30)
        hold(3.5, service.running)  # three more rescans see the ignored entries again
        memory = peak_memory_kb(service.pid)
        assert service.running()
        log = service.log()
    assert service.process.returncode == 0, log[-3000:]

    # failed/ with a reason each
    rows = {row["name"]: row for row in query(state, "SELECT * FROM documents")}
    for name, why in failing.items():
        row = rows[name]
        # (a 255-byte name is shortened in the middle: NAME.reason.txt must fit beside it)
        assert row["state"] == "failed" and row["location"].startswith("failed/"), row
        assert why in (state / f"{row['location']}.reason.txt").read_text(), name
    # ignored, left where they are, logged once (across several rescans)
    for name, why in ignored.items():
        assert os.path.lexists(export / name) and name not in rows
        lines = [line for line in log.splitlines() if f"ignoring {export / name}" in line]
        assert len(lines) == 1 and why in lines[0], (name, lines)
    # the rest was delivered: one To, no injected header, no path in the attachment name, and
    # the bytes that crossed the wire are the bytes archived
    archived = {row["message_id"]: row["eml"] for row in query(state, "SELECT * FROM deliveries")}
    subjects = []
    for message in server.messages:
        assert message.rcpt_tos == ("alfa@clienti.example",)
        fields = wire_headers(message.data)
        names = [field for field, _ in fields]
        assert sorted(names) == sorted(HEADERS), names  # each once, nothing injected
        subjects.append(dict(fields)["Subject"])
        (attachment,) = list(message.message.iter_attachments())
        filename = attachment.get_filename()
        assert not set(filename) & set("\r\n/\\"), filename
        eml = state / archived[message.message["Message-ID"]]
        assert eml.read_bytes() == message.data
    assert len(server.messages) == len(sent)
    assert any(s.startswith("Fattura n. 7 Bcc:e@v.it ..") for s in subjects)
    documents = query(state, "SELECT name, state FROM documents")
    assert [row["state"] for row in documents if row["name"] in sent] == ["done"] * len(sent)
    # a name cannot forge a log line: every line is a record or the indented rest of one
    forged = [
        line
        for line in log.splitlines()
        if line and not line[:1].isdigit() and not line[:1].isspace()
    ]
    assert forged == []
    assert consistency_problems(state) == []
    # nothing outside the folder was read, fetched or copied
    assert files_containing(state, PASSWD_MARK) == []
    assert not any(PASSWD_MARK in message.data for message in server.messages)
    assert PASSWD_MARK.decode() not in log
    with pytest.raises(BlockingIOError):
        dtd_listener.accept()
    assert memory < MEMORY_LIMIT_KB, f"peak memory {memory} kB"
    assert "Traceback" not in log

    tried = len(failing) + len(ignored) + len(sent)
    print(
        f"\nhostile files: {tried} tried; {len(failing)} in failed/ with a reason, "
        f"{len(ignored)} ignored and logged once, {len(sent)} odd names delivered; "
        f"peak memory {memory // 1024} MB"
    )
    FIGURES.set(
        "hostile inputs (files)",
        f"{tried}: billion laughs, quadratic blow-up, XXE, external DTD, external parameter "
        "entity, bomb inside a .p7m, 50 MB and 20 MB of zeros as .pdf, PDF without %%EOF, "
        "symlink to /etc/passwd, FIFO, folder, hard link, name with newlines/'..'/'\\', "
        "name with an encoded word hiding CR/LF (failed: number over 20), "
        "255-byte names (failed twice: number over 20); "
        f"peak memory {memory // 1024} MB",
    )


def name_of_255_bytes(digit: str) -> str:
    """A valid invoice name as long as Linux allows: 255 bytes."""
    name = "Fattura_" + digit * (255 - len("Fattura__2026_C001.pdf")) + "_2026_C001.pdf"
    assert len(name.encode()) == 255
    return name
