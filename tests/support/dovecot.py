"""A private Dovecot IMAP server for the tests: its own configuration, TLS certificate, user
(passwd-file) and Maildir, listening on 127.0.0.1 on free ports, run in the foreground as a
child of the test, never the distribution's service and nothing under /etc/dovecot.

Dovecot needs an unprivileged user for its login processes and refuses mail access as root.
As an ordinary user, every process runs as that user (no chroot, which needs root). As root
(CI), the login and internal processes run as the package's own users (dovenull, dovecot) and
the mail as `nobody`; since pytest's tmp_path lies in a folder only root may enter, the
instance then lives in a private folder under the system's temporary directory instead.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from invoice_mailer.demo.tlscerts import make_ca_and_cert
from invoice_mailer.receipts.imapconnect import ImapAccount, Security

USERNAME = "fatture@pec.studiorossi.it"
PASSWORD = "Segreto-2026!"
MAIL_USER_AS_ROOT = "nobody"
# An ordinary user's PATH often lacks /usr/sbin, where the package puts dovecot.
_SEARCH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin:/usr/bin"
DOVECOT = shutil.which("dovecot", path=_SEARCH)
DOVEADM = shutil.which("doveadm", path=_SEARCH)
needs_dovecot = pytest.mark.skipif(
    DOVECOT is None or DOVEADM is None,
    reason="dovecot-imapd is not installed (.ci/run installs it)",
)


@dataclass
class DovecotServer:
    root: Path  # the instance: configuration, certificates, sockets, the mail user's home
    tls_port: int  # implicit TLS (imaps)
    starttls_port: int  # plain IMAP, STARTTLS offered when TLS is on
    ca: Path  # the CA that signed the server's certificate
    process: subprocess.Popen[bytes]
    private: bool  # the root lives outside tmp_path and is removed on stop
    mail_uid: int = field(default=-1)
    _counter: int = 0

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def maildir(self) -> Path:
        return self.root / "home" / "Maildir"

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def account(self, security: Security = Security.TLS, **overrides: object) -> ImapAccount:
        port = self.tls_port if security is Security.TLS else self.starttls_port
        fields: dict[str, object] = {
            "host": "127.0.0.1",
            "username": USERNAME,
            "password": PASSWORD,
            "security": security,
            "port": port,
            "ca_file": self.ca,
            "timeout": 10.0,
        }
        fields.update(overrides)
        return ImapAccount(**fields)  # type: ignore[arg-type]

    def deliver(self, data: bytes, folder: str | None = None) -> Path:
        """Deliver as an MDA does: write under tmp/, then rename into new/."""
        box = self.maildir if folder is None else self.maildir / f".{folder}"
        for sub in ("tmp", "new", "cur"):
            (box / sub).mkdir(parents=True, exist_ok=True)
            self._own(box / sub)
        if folder is not None:
            (box / "maildirfolder").touch()
            self._own(box)
        self._counter += 1
        now = time.time()
        name = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{self._counter}.tests"
        temporary = box / "tmp" / name
        temporary.write_bytes(data)
        self._own(temporary)
        return temporary.rename(box / "new" / name)

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the Maildir (messages, folder markers) by relative path, with bytes."""
        return {
            str(path.relative_to(self.maildir)): path.read_bytes()
            for path in sorted(self.maildir.rglob("*"))
            if path.is_file()
        }

    def set_uidvalidity(self, value: int, folder: str = "INBOX") -> None:
        """What a rebuilt or recreated folder looks like to a client: a new UIDVALIDITY."""
        subprocess.run(
            [
                str(DOVEADM),
                "-c",
                str(self.config),
                "mailbox",
                "update",
                "-u",
                USERNAME,
                "--uid-validity",
                str(value),
                folder,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.private:
            shutil.rmtree(self.root, ignore_errors=True)

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, -1)


def start_dovecot(
    tmp_path: Path, tls: bool = True, oauth_introspection_url: str | None = None
) -> DovecotServer:
    """A running private Dovecot; `tls=False` offers neither imaps nor STARTTLS. With
    `oauth_introspection_url` it also takes AUTH XOAUTH2, each access token checked by that
    RFC 7662 endpoint (tests/support/oauthserver.py), for the same user."""
    as_root = os.geteuid() == 0
    if as_root:
        root = Path(tempfile.mkdtemp(prefix="invoice-mailer-dovecot-"))
    else:
        root = tmp_path / "dovecot"
        root.mkdir(parents=True)
    ca, cert, key = make_ca_and_cert(root / "certs")
    mail_user = pwd.getpwnam(MAIL_USER_AS_ROOT) if as_root else pwd.getpwuid(os.getuid())
    home = root / "home"
    home.mkdir()
    (root / "passwd").write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}\n")
    if as_root:
        root.chmod(0o711)  # the unprivileged processes pass through; only root lists it
        (root / "passwd").chmod(0o644)  # read by the auth process (user dovecot)
        os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
    tls_port, starttls_port = _free_port(), _free_port()
    settings = _settings(root, cert, key, mail_user, tls_port, starttls_port, as_root, tls)
    if oauth_introspection_url is not None:
        settings += _oauth_settings(root, oauth_introspection_url, as_root)
    (root / "dovecot.conf").write_text(settings)
    with open(root / "stderr.log", "wb") as stderr:  # the child keeps its own copy
        process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    server = DovecotServer(root, tls_port, starttls_port, ca, process, as_root, mail_user.pw_uid)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _settings(
    root: Path,
    cert: Path,
    key: Path,
    mail_user: pwd.struct_passwd,
    tls_port: int,
    starttls_port: int,
    as_root: bool,
    tls: bool,
) -> str:
    me = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    # Without root there is no chroot and no other user to switch to.
    chroot = "" if as_root else "  chroot =\n"
    imaps = f"  inet_listener imaps {{\n    port = {tls_port}\n    ssl = yes\n  }}\n" if tls else ""
    return f"""# A private instance for the tests: nothing here is read from /etc/dovecot.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = {"required" if tls else "no"}
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
auth_failure_delay = 0  # a refused login answers at once instead of after 2 s
default_internal_user = {"dovecot" if as_root else me}
default_login_user = {"dovenull" if as_root else me}
{"" if as_root else f"default_internal_group = {group}"}
first_valid_uid = {min(mail_user.pw_uid, 500)}
last_valid_uid = 0
mail_location = maildir:~/Maildir:INDEX=~/index:CONTROL=~/control
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={root}/home
}}
service imap-login {{
{chroot}  inet_listener imap {{
    port = {starttls_port}
  }}
{imaps}}}
service anvil {{
{chroot}}}
"""


def _oauth_settings(root: Path, introspection_url: str, as_root: bool) -> str:
    """Dovecot's oauth2 passdb (doc.dovecot.org/2.3, "Open Authentication v2.0 database"),
    tried before the password file: an XOAUTH2 token is POSTed to the introspection URL and
    must come back active, for the user who logs in."""
    extension = root / "oauth2.conf.ext"
    extension.write_text(
        f"introspection_mode = post\n"
        f"introspection_url = {introspection_url}\n"
        "force_introspection = yes\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
    )
    if as_root:
        extension.chmod(0o644)  # read by the auth process (user dovecot)
    return f"""auth_mechanisms = plain login xoauth2 oauthbearer
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {extension}
}}
"""


def _wait_ready(server: DovecotServer, timeout: float = 20.0) -> None:
    """Ready when the IMAP port answers (by connecting, not by sleeping)."""
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            stderr = (server.root / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"dovecot exited at start: {stderr}{server.log}")
        try:
            with socket.create_connection(("127.0.0.1", server.starttls_port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not listen in {timeout} s: {server.log}") from None
            time.sleep(0.02)  # polling a port with a deadline, not synchronising on a sleep


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[DovecotServer]:
    server = start_dovecot(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dovecot_factory(tmp_path: Path) -> Iterator[Callable[..., DovecotServer]]:
    """Start servers with options (`tls=False`); all are stopped after the test."""
    started: list[DovecotServer] = []

    def start(tls: bool = True) -> DovecotServer:
        server = start_dovecot(tmp_path / uuid.uuid4().hex[:8], tls=tls)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
