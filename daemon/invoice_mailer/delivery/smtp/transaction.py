"""One message on an open SMTP session: MAIL FROM, RCPT TO, DATA, the body streamed from
disk, and the reply to the final dot, each refusal turned into an SmtpFailure by the session.
The session (session.py) owns the connection: opening, reuse, and what a failure leaves behind.

Where the server offers PIPELINING, the next message's MAIL, RCPT and DATA go right behind
this one's final dot (RFC 2920 §3.1: message content may be the first "command" of a group),
so the server has them when it has answered the dot, instead of one round trip later. Its
content goes only after its own 354, as always.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.delivery.smtp.envelope import Envelope, no_recipient_accepted, plan_envelope
from invoice_mailer.delivery.smtp.outcome import SendResult, SmtpFailure, reply_text
from invoice_mailer.delivery.smtp.wire import CHUNK_SIZE, BoundedSMTP, UnreadableReply, dot_stuff


@dataclass(frozen=True)
class Upcoming:
    """The message that will follow on this session: its envelope may be announced early."""

    sender: str
    recipients: tuple[str, ...]
    message_path: Path
    size: int


@dataclass(frozen=True)
class Announced:
    """An upcoming message whose MAIL, RCPT and DATA are on the wire, their replies unread."""

    upcoming: Upcoming
    envelope: Envelope


class Transaction:
    """`at(phase, doing)` tells the session where it is (a failure is classified by phase);
    `refusal(code, reply)` makes the SmtpFailure for a reply that is not the expected one;
    `announcing(announced)` is told before the next message's envelope goes on the wire."""

    def __init__(
        self,
        smtp: BoundedSMTP,
        where: str,
        config: SmtpConfig,
        at: Callable[[str, str], None],
        refusal: Callable[[int, bytes | str], SmtpFailure],
        announcing: Callable[[Announced], None] = lambda announced: None,
    ):
        self.smtp = smtp
        self.where = where
        self.config = config
        self.at = at
        self.refusal = refusal
        self.announcing = announcing

    def run(
        self,
        sender: str,
        recipients: Sequence[str],
        message: BinaryIO,
        size: int,
        while_waiting: Callable[[], Upcoming | None] = lambda: None,
        announced: Announced | None = None,
    ) -> SendResult:
        """`while_waiting` runs once the final dot is sent, while the server works on the
        message (its reply waits in the socket); it must not raise. What it returns, the next
        message, is announced behind the dot where the server pipelines. `announced`: this
        message's envelope went behind the previous one's dot; only its replies are read."""
        self.at("mail", f"MAIL FROM {sender}")
        if announced is not None:
            envelope, pipelined = announced.envelope, True
        else:
            features = self.smtp.esmtp_features
            envelope = plan_envelope(sender, recipients, size, features, self.where)
            self.smtp.command_encoding = _encoding(envelope)
            pipelined = "pipelining" in features
            if pipelined:  # RFC 2920: MAIL, every RCPT and DATA in one write
                self.smtp.send(_commands(envelope))
        if pipelined:
            accepted, refused = self._replies(envelope)
        else:
            code, reply = self.smtp.mail(envelope.sender, list(envelope.options))
            if code != 250:
                raise self.refusal(code, reply)
            accepted, refused = self._recipients(envelope)
            self.at("data", f"DATA on {self.where}")
            code, reply = self.smtp.docmd("DATA")
            if code != 354:
                raise self.refusal(code, reply)
        self._stream(message)
        upcoming = while_waiting()
        announced_next = self._announce(upcoming) if upcoming is not None else None
        code, reply = self._final_reply(expect_more=announced_next is not None)
        if code != 250:
            raise self.refusal(code, reply)
        return SendResult(tuple(accepted), refused, f"{code} {reply_text(reply)}")

    def _announce(self, upcoming: Upcoming) -> Announced | None:
        """The next message's envelope behind this one's dot, where the server pipelines. One
        that cannot be planned here is left to its own transaction, which reports why."""
        if "pipelining" not in self.smtp.esmtp_features:
            return None
        try:
            envelope = plan_envelope(
                upcoming.sender,
                upcoming.recipients,
                upcoming.size,
                self.smtp.esmtp_features,
                self.where,
            )
            commands = _commands(envelope)
        except (SmtpFailure, ValueError):
            return None
        if envelope.refused or not envelope.recipients:
            return None  # its refusals are reported by its own transaction
        announced = Announced(upcoming, envelope)
        self.announcing(announced)  # from here the session cannot be reset, only closed
        self.smtp.command_encoding = _encoding(envelope)
        self.smtp.send_ahead(commands)
        return announced

    def _replies(self, envelope: Envelope) -> tuple[list[str], dict[str, tuple[int, str]]]:
        """The replies to a pipelined MAIL, RCPT… and DATA, in order, each read before anything
        is decided, so the session stays in step whatever they say."""
        wire = list(envelope.recipients)
        code, reply = self.smtp.getreply()
        if code == 421:
            raise self.refusal(code, reply)  # the server is closing: no more replies come
        failure = None if code == 250 else self.refusal(code, reply)
        accepted: list[str] = []
        refused = dict(envelope.refused)
        for address in wire:
            recipient = envelope.recipients[address]
            self.at("rcpt", f"RCPT TO {address}")
            code, reply = self.smtp.getreply()
            if code == 421:
                raise self.refusal(code, reply)
            if code in (250, 251):
                accepted.append(recipient)
            else:
                refused[recipient] = (code, reply_text(reply))
        self.at("data", f"DATA on {self.where}")
        code, reply = self.smtp.getreply()
        if failure is None and not accepted:
            failure = no_recipient_accepted(refused)
        if failure is None and code != 354:
            failure = self.refusal(code, reply)
        if failure is not None:
            if code == 354:  # DATA accepted all the same: an empty message ends it (RFC 2920)
                self.smtp.send(b".\r\n")
                self.smtp.getreply()
            raise failure
        return accepted, refused

    def _recipients(self, envelope: Envelope) -> tuple[list[str], dict[str, tuple[int, str]]]:
        """RCPT TO each wire address; accepted and refused in the caller's spelling."""
        accepted: list[str] = []
        refused = dict(envelope.refused)
        wire = list(envelope.recipients)
        for index, address in enumerate(wire):
            recipient = envelope.recipients[address]
            self.at("rcpt", f"RCPT TO {address}")
            code, reply = self.smtp.rcpt(address)
            if code in (250, 251):
                accepted.append(recipient)
                continue
            if code == 421:
                raise self.refusal(code, reply)  # the server is closing: nothing more to do
            refused[recipient] = (code, reply_text(reply))
            if code in (452, 552):  # too many recipients: the rest would be refused as well
                rest = [envelope.recipients[other] for other in wire[index + 1 :]]
                refused.update({other: (code, reply_text(reply)) for other in rest})
                break
        if not accepted:
            raise no_recipient_accepted(refused)
        return accepted, refused

    def _stream(self, message: BinaryIO) -> None:
        """Send the body chunk by chunk: smtplib.data() would need it all in memory."""
        self.at("data", f"sending the message to {self.where}")
        tail = b"\r\n"
        while chunk := message.read(CHUNK_SIZE):
            self.smtp.send(dot_stuff(chunk, tail))
            tail = (tail + chunk)[-2:]
        # From here on the server may have the whole message: a lost reply is ambiguous.
        self.at("end_of_data", f"end of DATA on {self.where}")
        self.smtp.send(b".\r\n" if tail == b"\r\n" else b"\r\n.\r\n")

    def _final_reply(self, expect_more: bool) -> tuple[int, bytes]:
        """The reply to the final dot, within data_timeout for the whole of it (RFC 5321
        §4.5.3.2: 10 minutes). More than one reply means the session is out of step: which
        one answered the dot cannot be known (unless the next envelope was announced: its
        replies follow, and they are read in order as the next message's)."""
        self.smtp.reply_timeout = self.config.data_timeout
        try:
            reply = self.smtp.getreply()
        finally:
            self.smtp.reply_timeout = self.config.timeout
        if not expect_more and self.smtp.unasked_reply():
            self.smtp.close()
            raise UnreadableReply("the server sent more than one reply to the final '.'")
        return reply


def _commands(envelope: Envelope) -> bytes:
    """MAIL FROM with its options, every RCPT TO and DATA, as one pipelined write."""
    options = "".join(f" {option}" for option in envelope.options)
    commands = [f"MAIL FROM:{smtplib.quoteaddr(envelope.sender)}{options}"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(address)}" for address in envelope.recipients]
    commands.append("DATA")
    if any("\r" in command or "\n" in command for command in commands):
        raise ValueError("a line break inside an SMTP command")  # as smtplib.putcmd refuses
    return "".join(f"{command}\r\n" for command in commands).encode(_encoding(envelope))


def _encoding(envelope: Envelope) -> str:
    """How the commands of this envelope are written: UTF-8 only under SMTPUTF8."""
    return "utf-8" if "SMTPUTF8" in envelope.options else "ascii"
