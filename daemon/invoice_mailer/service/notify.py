"""The sd_notify(3) protocol, spoken directly: one datagram per message to $NOTIFY_SOCKET.

Under systemd (`Type=notify`) the service reports READY=1, STATUS=..., WATCHDOG=1, RELOADING=1
and STOPPING=1 itself. Outside systemd every call is a no-op, and a failure to notify is never
an error: the service must run the same with or without a service manager.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# A notification that cannot be delivered within this is dropped: the service must not hang
# on a stuck service manager (a datagram to a full AF_UNIX queue blocks otherwise).
SEND_TIMEOUT = 2.0

_LINE_BREAKS = re.compile(r"[\r\n]+")


class Notifier:
    """Sends state changes to the service manager; inert when there is none."""

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None):
        """`address` as in $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace)."""
        self._address = _socket_address(address) if address else None
        self._watchdog_usec = watchdog_usec

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID as systemd sets them."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None, _watchdog_usec(env))

    @property
    def enabled(self) -> bool:
        """True when a service manager listens (notifications are actually sent)."""
        return self._address is not None

    def ready(self) -> bool:
        """Startup (or a reload) is complete: `systemctl start` returns now."""
        return self._send("READY=1")

    def status(self, text: str) -> bool:
        """A one-line status for `systemctl status`; line breaks become spaces."""
        line = _LINE_BREAKS.sub(" ", text).replace("\0", "").strip()
        return self._send(f"STATUS={line}")

    def watchdog(self) -> bool:
        """Still alive: without this within WatchdogSec=, systemd kills and restarts us."""
        return self._send("WATCHDOG=1")

    def reloading(self) -> bool:
        """A reload began; send ready() when it is over (sd_notify(3) wants the timestamp)."""
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self._send(f"RELOADING=1\nMONOTONIC_USEC={now_usec}")

    def stopping(self) -> bool:
        """Shutdown began (SIGTERM): the message in flight is being finished."""
        return self._send("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog() calls (half of WatchdogSec=), or None when not asked."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def _send(self, message: str) -> bool:
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT)
                sock.sendto(message.encode("utf-8", "replace"), self._address)
        except OSError as exc:
            log.debug("cannot notify the service manager (%s): %s", message.split("=")[0], exc)
            return False
        return True

    def __repr__(self) -> str:
        return f"Notifier(enabled={self.enabled}, watchdog_interval={self.watchdog_interval()})"


def _socket_address(value: str) -> str | None:
    """The sendto() address for a $NOTIFY_SOCKET value; None for forms we do not speak."""
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace, as sd_notify does
    if value.startswith("/"):
        return value
    # systemd 254+ may also name vsock: addresses (VMs); a service on a host never gets them.
    log.debug("NOTIFY_SOCKET %r is neither a path nor @abstract; not notifying", value)
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    """WATCHDOG_USEC when it is meant for this process (WATCHDOG_PID unset or our pid)."""
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None  # inherited from a parent: the watchdog is someone else's
        except ValueError:
            log.debug("WATCHDOG_PID %r is not a number; no watchdog", pid)
            return None
    try:
        usec = int(raw)
    except ValueError:
        log.debug("WATCHDOG_USEC %r is not a number; no watchdog", raw)
        return None
    return usec if usec > 0 else None
