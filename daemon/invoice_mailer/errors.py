"""One exception family; the command line turns each into one sentence and an exit status."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

EX_FAILURE = 1
EX_CONFIG = 78  # sysexits.h EX_CONFIG: systemd's RestartPreventExitStatus=78 stops restart loops


# The arguments the command was run with, for advice that repeats the command; set by cli.main.
invocation: list[str] = []


def permission_advice() -> str:
    """What to do about "permission denied" on a file the service's own user may read."""
    command = shlex.join(["invoice-mailer", *invocation]) if invocation else "invoice-mailer …"
    return f"run as root or as the service's user: runuser -u invoice-mailer -- {command}"


class InvoiceMailerError(Exception):
    """A failure the admin can act on; str() is the sentence they read."""

    exit_status = EX_FAILURE


@dataclass(frozen=True)
class Problem:
    """One mistake in a configuration or address-book file."""

    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line else ""
        return f"{where}{self.key}: {self.message}" if self.key else f"{where}{self.message}"


class ConfigError(InvoiceMailerError):
    """The configuration cannot be used; lists every problem found, with line and key."""

    exit_status = EX_CONFIG

    def __init__(self, source: str, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(None, "", problems)]
        self.source = source
        self.problems = problems
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        lines = [f"{self.source}: {len(self.problems)} problems"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


class SecretError(InvoiceMailerError):
    """The key or the encrypted password cannot be used (a configuration matter: exit 78)."""

    exit_status = EX_CONFIG


class LockedError(InvoiceMailerError):
    """Another instance already owns the state directory."""


class LedgerError(InvoiceMailerError):
    """The ledger database cannot be opened or is from a newer version."""


class NothingMatched(InvoiceMailerError):
    """An admin command found nothing to act on."""


class DocumentError(InvoiceMailerError):
    """A document that cannot be sent as it is (not a PDF, XML not well-formed, p7m unreadable)."""


class UnsafeDocument(DocumentError):
    """Refused for safety (a DTD, entities): no amount of waiting makes it acceptable."""


def shown(exc: BaseException) -> BaseException:
    """The exception as it may appear in a log line, a reason or an alert. A UnicodeError
    quotes the character it choked on, which may be one of a password's (smtplib encodes
    AUTH as ASCII): that one is masked; the traceback stays."""
    if isinstance(exc, UnicodeEncodeError):
        masked: BaseException = UnicodeEncodeError(
            exc.encoding, "?" * len(exc.object), exc.start, exc.end, exc.reason
        )
    elif isinstance(exc, UnicodeDecodeError):
        masked = UnicodeDecodeError(
            exc.encoding, b"?" * len(exc.object), exc.start, exc.end, exc.reason
        )
    else:
        return exc
    return masked.with_traceback(exc.__traceback__)


def describe(exc: BaseException) -> str:
    """'Class: message' of an unexpected error, for a reason the admin reads."""
    if isinstance(exc, (UnicodeEncodeError, UnicodeDecodeError)):
        what = f"'{exc.encoding}' codec: {exc.reason} (at position {exc.start}, not shown)"
        return f"{type(exc).__name__}: {what}"
    return f"{type(exc).__name__}: {exc}"
