"""Who may see the office's page: the users of `web.users`, after a login that is rate-limited;
the session cookie is HttpOnly, SameSite=Strict, and Secure whenever the page came over TLS.

With no users configured (allowed on loopback only, office/webserve.py) there is no login.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from invoice_mailer.office.passwords import DUMMY_HASH, check_password

ATTEMPTS = 5  # failed logins allowed per address, and per user name, in WINDOW
WINDOW = 15 * 60.0
SESSION_HOURS = 10  # a working day; then a new login


class RateLimit:
    """Failed attempts per key in a sliding window; thread-safe (waitress runs threads)."""

    def __init__(self, attempts: int = ATTEMPTS, window: float = WINDOW, clock=time.monotonic):
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, *keys: str) -> float:
        """Seconds until another attempt is allowed for every key (0: now)."""
        now = self.clock()
        with self._lock:
            longest = 0.0
            for key in keys:
                failures = self._failures.get(key)
                while failures and failures[0] <= now - self.window:
                    failures.popleft()
                if failures and len(failures) >= self.attempts:
                    longest = max(longest, failures[0] + self.window - now)
            return longest

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > 10_000:  # a flood of names: forget the oldest keys
                for key in list(self._failures)[:5_000]:
                    del self._failures[key]


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
        keys = (f"address:{request.remote_addr}", f"user:{name.casefold()}")
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
