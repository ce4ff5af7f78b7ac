"""The service with the one-line changes proposed in issue 9 applied in memory, for measuring
them before their owners make them (bench/README.md, "Trying a change"):

    INVOICE_MAILER_BENCH_LAUNCHER=bench/proposals.py python bench/run.py burst latency

- watch.py: watchdog holds every IN_MOVED_FROM for 0.5 s to pair it with an IN_MOVED_TO, and
  its queue is first-in first-out, so each file the intake renames out of the folder delays
  every later event by up to 0.5 s. Nothing needs pairing across more than a few ms (both
  halves of a rename come from one syscall).
- smtp.py: without TCP_NODELAY the small final ".\\r\\n" waits for the ACK of the last data
  segment, which the server delays (40 ms on Linux): one stall per message.

Delete this file once both are in the package.
"""

from __future__ import annotations

import smtplib
import socket
import sys

from watchdog.observers import inotify_move_event_grouper

from invoice_mailer import smtp
from invoice_mailer.cli import main

inotify_move_event_grouper.InotifyMoveEventGrouper.delay = 0.02

_open = smtp.SmtpTransport._open


def _open_without_nagle(self: smtp.SmtpTransport) -> smtplib.SMTP:
    connection = _open(self)
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


smtp.SmtpTransport._open = _open_without_nagle

if __name__ == "__main__":
    sys.exit(main())
