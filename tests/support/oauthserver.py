"""A local OAuth2 server for the tests: the device authorization endpoint (RFC 8628), the token
endpoint (device code and refresh grants, RFC 6749 §6) with short-lived access tokens and
refresh-token rotation, an introspection endpoint (RFC 7662) for Dovecot, and faults: refused
refresh tokens (invalid_grant), failing requests, a declined sign-in.

Plain HTTP on 127.0.0.1 (the code under test allows http only to loopback). A test plays the
person at the browser with `approve(user_code)`.

    with OAuthTestServer(lifetime=2.0) as oauth:
        ...config: smtp.oauth {provider: custom, device_url: oauth.device_url, ...}
        oauth.approve(code)
        assert oauth.user_of(token) == oauth.user
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from subprocess import CompletedProcess
from urllib.parse import parse_qs

from tests.support.helpers import wait_until

HOST = "127.0.0.1"
CLIENT_ID = "invoice-mailer-test"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class _Device:
    device_code: str
    user_code: str
    expires_at: float
    scope: str
    state: str = "pending"  # pending | approved | denied | used
    user: str = ""


class OAuthTestServer:
    """The sign-in server, in its own thread; a context manager."""

    def __init__(
        self,
        lifetime: float = 60.0,
        user: str = "fatture@example.it",
        client_id: str = CLIENT_ID,
        interval: float = 0.2,
        device_ttl: float = 30.0,
    ):
        self.lifetime = lifetime
        self.user = user
        self.client_id = client_id
        self.interval = interval
        self.device_ttl = device_ttl
        self.answer_delay = 0.0  # seconds between deciding a token request and answering it
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}
        self._access: dict[str, tuple[str, float]] = {}  # token -> (user, expires_at)
        self._refresh: dict[str, tuple[str, str]] = {}  # token -> (user, scope)
        self._issued: list[str] = []  # every secret handed out, for leak checks
        self._grants: list[str] = []  # grant_type of every token request answered 200
        self._introspected: list[str] = []  # tokens Dovecot asked about
        self._refused: list[str] = []  # error codes answered
        self._failures: list[str] = []  # "503" or "drop", for the next requests
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> OAuthTestServer:
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self._httpd.daemon_threads = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="oauth-test"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()  # joins the request threads
        assert self._thread is not None
        self._thread.join(5)

    def __enter__(self) -> OAuthTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        assert self._httpd is not None, "not started"
        return f"http://{HOST}:{self._httpd.server_address[1]}/{path}"

    @property
    def device_url(self) -> str:
        return self.url("device")

    @property
    def token_url(self) -> str:
        return self.url("token")

    @property
    def introspection_url(self) -> str:
        return self.url("introspect")

    # -- the person at the browser, and faults ---------------------------------------------

    def approve(self, user_code: str, user: str | None = None) -> None:
        with self._lock:
            device = self._by_user_code(user_code)
            device.state, device.user = "approved", user or self.user

    def deny(self, user_code: str) -> None:
        with self._lock:
            self._by_user_code(user_code).state = "denied"

    def revoke(self) -> None:
        """Every refresh token refused from now on (invalid_grant): the admin's password
        changed, or an administrator revoked the app's sessions."""
        with self._lock:
            self._refresh.clear()

    def fail_requests(self, n: int, how: str = "503") -> None:
        """The next n requests fail: "503" (a busy server) or "drop" (connection closed)."""
        with self._lock:
            self._failures += [how] * n

    # -- what the server knows -------------------------------------------------------------

    def expiry_of(self, token: str) -> float | None:
        """When the server stops taking an access token (epoch), as it decided on issuing it."""
        with self._lock:
            found = self._access.get(token)
        return None if found is None else found[1]

    def user_of(self, token: str) -> str | None:
        """The user of a valid, unexpired access token; None otherwise."""
        with self._lock:
            found = self._access.get(token)
        if found is None or found[1] <= time.time():
            return None
        return found[0]

    def expired(self, token: str) -> bool:
        with self._lock:
            found = self._access.get(token)
        return found is None or found[1] <= time.time()

    @property
    def issued(self) -> list[str]:
        with self._lock:
            return list(self._issued)

    @property
    def grants(self) -> list[str]:
        with self._lock:
            return list(self._grants)

    @property
    def introspected(self) -> list[str]:
        with self._lock:
            return list(self._introspected)

    @property
    def refusals(self) -> list[str]:
        with self._lock:
            return list(self._refused)

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            return [d.user_code for d in self._devices.values() if d.state == "pending"]

    # -- the endpoints (server thread) ----------------------------------------------------

    def _answer(self, path: str, form: dict[str, str]) -> tuple[int, dict] | None:
        with self._lock:
            if self._failures:
                how = self._failures.pop(0)
                return None if how == "drop" else (503, {"error": "temporarily_unavailable"})
            if path == "/introspect":
                return 200, self._introspect(form.get("token", ""))
            if form.get("client_id") != self.client_id:
                return self._error(401, "invalid_client")
            if path == "/device":
                return 200, self._new_device(form.get("scope", ""))
            if path == "/token":
                return self._token(form)
            return 404, {"error": "not_found"}

    def _new_device(self, scope: str) -> dict:
        device = _Device(
            device_code=self._secret(),
            user_code=f"{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**4):04d}",
            expires_at=time.time() + self.device_ttl,
            scope=scope,
        )
        self._devices[device.device_code] = device
        return {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_uri": self.url("activate"),
            "expires_in": int(self.device_ttl),
            "interval": self.interval,
        }

    def _token(self, form: dict[str, str]) -> tuple[int, dict]:
        grant = form.get("grant_type", "")
        if grant == DEVICE_GRANT:
            device = self._devices.get(form.get("device_code", ""))
            if device is None or device.state == "used":
                return self._error(400, "invalid_grant")
            if device.expires_at <= time.time():
                return self._error(400, "expired_token")
            if device.state == "pending":
                return self._error(400, "authorization_pending")
            if device.state == "denied":
                return self._error(400, "access_denied")
            device.state = "used"
            return self._tokens(grant, device.user, device.scope)
        if grant == "refresh_token":
            found = self._refresh.pop(form.get("refresh_token", ""), None)  # rotation
            if found is None:
                return self._error(400, "invalid_grant")
            return self._tokens(grant, *found)
        return self._error(400, "unsupported_grant_type")

    def _tokens(self, grant: str, user: str, scope: str) -> tuple[int, dict]:
        access, refresh = self._secret(), self._secret()
        self._access[access] = (user, time.time() + self.lifetime)
        self._refresh[refresh] = (user, scope)
        self._grants.append(grant)
        answer = {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.lifetime,
            "scope": scope,
        }
        return 200, answer

    def _introspect(self, token: str) -> dict:
        self._introspected.append(token)
        found = self._access.get(token)
        if found is None or found[1] <= time.time():
            return {"active": False}
        return {"active": True, "username": found[0], "exp": int(found[1])}

    def _error(self, status: int, error: str) -> tuple[int, dict]:
        self._refused.append(error)
        return status, {"error": error, "error_description": f"test server: {error}"}

    def _secret(self) -> str:
        value = secrets.token_urlsafe(24)
        self._issued.append(value)
        return value

    def _by_user_code(self, user_code: str) -> _Device:
        for device in self._devices.values():
            if device.user_code == user_code:
                return device
        raise AssertionError(f"no device code with user code {user_code!r}")


class _Handler(BaseHTTPRequestHandler):
    server_owner: OAuthTestServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("ascii", "replace")
        form = {key: values[0] for key, values in parse_qs(body).items()}
        answer = self.server_owner._answer(self.path.split("?")[0], form)
        if answer is None:
            self.close_connection = True
            self.connection.close()
            return
        status, payload = answer
        if self.server_owner.answer_delay:  # a slow network or server: the answer comes late
            time.sleep(self.server_owner.answer_delay)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the tests read what they need from the server's own records


def sign_in(server: OAuthTestServer, endpoints, user: str | None = None):
    """The whole device flow, the test playing the person: a TokenSet for `user`."""
    from invoice_mailer.oauth import deviceflow

    code = deviceflow.request_code(endpoints)
    server.approve(code.user_code, user)
    return deviceflow.wait_for_sign_in(endpoints, code)


def endpoints_of(server: OAuthTestServer, **changes):
    """Endpoints for `server`'s registered client, as endpoints_for() builds them."""
    from invoice_mailer.oauth.endpoints import Endpoints

    values = {
        "device_url": server.device_url,
        "token_url": server.token_url,
        "client_id": server.client_id,
        "scope": "mail offline_access",
        "timeout": 5.0,
    } | changes
    return Endpoints(**values)


def run_login(config, server: OAuthTestServer, approve: bool = True) -> CompletedProcess:
    """`invoice-mailer login` as the admin runs it (a process), the test answering at the
    'browser' as the server's user: approving the code it printed, or declining it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "invoice_mailer", "-c", str(config), "login"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        (code,) = wait_until(server.pending_user_codes, timeout=20)
        (server.approve if approve else server.deny)(code)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if approve:  # the address and the very code the admin typed at the 'browser'
        assert f"To sign in, open {server.url('activate')}\nand enter the code {code}\n" in stdout
    return CompletedProcess(process.args, process.returncode, stdout, stderr)


def login_cli(config, server: OAuthTestServer) -> str:
    """A sign-in that must succeed; what `login` printed."""
    done = run_login(config, server)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr
