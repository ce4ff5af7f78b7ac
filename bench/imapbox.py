"""The sender's mailbox for the receipts benchmark: the tests' private Dovecot on loopback
(tests/support/dovecot.py: implicit TLS, one user, a Maildir), with what the benchmark adds.

Messages are put straight into the Maildir (as a delivery agent does: written under tmp/,
renamed into new/), then Dovecot is made to index them, so that the time measured is the
service's reading and not Dovecot's first look at 10,000 new files.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness import Unavailable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from invoice_mailer.receipts.imapconnect import ImapAccount
from tests.support.dovecot import DOVEADM, DOVECOT, PASSWORD, USERNAME, start_dovecot


class Dovecot:
    """A running private Dovecot; `stop()` ends it (and removes a private root)."""

    def __init__(self, folder: Path) -> None:
        """In `folder` (as root, in a folder of its own the mail user may enter)."""
        if DOVECOT is None or DOVEADM is None:
            raise Unavailable("dovecot is not installed (apt-get install dovecot-imapd)")
        self.server = start_dovecot(folder)

    @property
    def maildir(self) -> Path:
        return self.server.maildir

    def imap_config(self) -> dict:
        """The `receipts.imap` section that reads this mailbox."""
        return {
            "host": "127.0.0.1",
            "port": self.server.tls_port,
            "security": "tls",
            "username": USERNAME,
            "password": PASSWORD,
            "ca_file": str(self.server.ca),
            "timeout": "30s",
        }

    def account(self) -> ImapAccount:
        """The same mailbox for the benchmark's own connection (package's Mailbox)."""
        return self.server.account()

    def put(self, messages: list[bytes]) -> None:
        """Deliver each message as an MDA does, and have Dovecot index them all (UIDs, sizes):
        the state of a mailbox whose mail arrived over days."""
        for data in messages:
            self.server.deliver(data)
        subprocess.run(  # noqa: S603 (the installed doveadm, fixed args)
            [str(DOVEADM), "-c", str(self.server.config), "fetch", "-u", USERNAME,
             "uid size.virtual", "mailbox", "INBOX"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600,
        )  # fmt: skip

    def deliver(self, data: bytes) -> float:
        """One message into new/; the time.time() of its rename (when the server can see it)."""
        self.server.deliver(data)
        return time.time()

    def stop(self) -> None:
        self.server.stop()
