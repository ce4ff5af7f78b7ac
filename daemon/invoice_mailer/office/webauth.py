"""Who may see the office's page: the users of `web.users`, after a login that is rate-limited;
the session cookie is HttpOnly, SameSite=Strict, and Secure whenever the page came over TLS.

With no users configured (allowed on loopback only, office/webserve.py) there is no login.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Collection
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from invoice_mailer.office.passwords import DUMMY_HASH, check_password

ATTEMPTS = 5  # failed logins allowed per address, and per user name, in WINDOW
WINDOW = 15 * 60.0
KEYS_KEPT = 10_000  # addresses remembered at most: a flood of them forgets the oldest
SESSION_HOURS = 10  # a working day; then a new login


class RateLimit:
    """Failed attempts per key in a sliding window; thread-safe (waitress runs threads).
    Users' keys (as few as web.users) are kept; of the addresses, the KEYS_KEPT latest."""

    def __init__(self, attempts: int = ATTEMPTS, window: float = WINDOW, clock=time.monotonic):
        self.attempts, self.window, self.clock = attempts, window, clock
        self._users: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}  # in the order first seen
        self._lock = threading.Lock()

    def wait(self, *keys: str) -> float:
        """Seconds until another attempt is allowed for every key (0: now)."""
        now = self.clock()
        with self._lock:
            longest = 0.0
            for key in keys:
                failures = self._table(key).get(key)
                while failures and failures[0] <= now - self.window:
                    failures.popleft()
                if failures and len(failures) >= self.attempts:
                    longest = max(longest, failures[0] + self.window - now)
            return longest

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._table(key).setdefault(key, deque()).append(now)
            if len(self._addresses) > KEYS_KEPT:  # a flood of addresses: forget the oldest half
                for key in list(self._addresses)[: KEYS_KEPT // 2]:
                    del self._addresses[key]

    def _table(self, key: str) -> dict[str, deque[float]]:
        return self._users if key.startswith("user:") else self._addresses


def login_keys(address: str | None, name: str, users: Collection[str]) -> tuple[str, ...]:
    """What a failed login counts against: the client's address (an IPv6 one by its /64, the
    block one machine usually has to itself: else each try could come from a new address),
    and the user name if it is one of web.users. Unknown names are not counted: nobody can
    guess their password, and a flood of them must not crowd out the real ones."""
    keys = [f"address:{_network(address or '')}"]
    wanted = name.casefold()
    if any(user.casefold() == wanted for user in users):
        keys.append(f"user:{wanted}")
    return tuple(keys)


def _network(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP address (a Unix socket): as it is
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is that IPv4 client
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure when this request came over TLS (directly, or
    from the trusted proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def install(app: Flask, users: dict[str, str], limit: RateLimit) -> None:
    """The login page and the guard in front of every other page."""
    app.session_interface = SessionCookies()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="invoice_mailer",
    )
    pages = Blueprint("access", __name__)

    @app.before_request
    def guard() -> Any:
        if not users or request.endpoint in ("access.login", "static"):
            return None
        since = session.get("since", 0)
        if session.get("user") in users and time.time() - since < SESSION_HOURS * 3600:
            return None
        session.clear()
        return redirect(url_for("access.login", next=request.full_path.rstrip("?")))

    @pages.route("/accesso", methods=["GET", "POST"])
    def login() -> Any:
        if not users:
            return redirect(url_for("search"))
        if request.method == "GET":
            return render_template("login.html", error=None)
        name = request.form.get("utente", "")[:200]
        password = request.form.get("password", "")[:1000]
        keys = login_keys(request.remote_addr, name, users)
        wait = limit.wait(*keys)
        if wait:
            minutes = int(wait // 60) + 1
            error = f"Troppi tentativi sbagliati: riprovare tra {minutes} minuti."
            return render_template("login.html", error=error), 429
        if not check_password(password, users.get(name, DUMMY_HASH)) or name not in users:
            limit.failed(*keys)
            return render_template("login.html", error="Nome o password sbagliati."), 401
        session.clear()
        session.update(user=name, since=time.time())
        return redirect(_local(request.args.get("next")) or url_for("search"))

    @pages.route("/esci", methods=["POST"])
    def logout() -> Any:
        session.clear()
        return redirect(url_for("access.login") if users else url_for("search"))

    app.register_blueprint(pages)
    app.context_processor(lambda: {"user": session.get("user"), "login_needed": bool(users)})


def _local(target: str | None) -> str | None:
    """Only a path on this site: never a redirect elsewhere (//evil.example, https://…)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    return target
