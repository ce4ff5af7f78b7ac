"""The sender's mailbox for the receipts benchmark: a private Dovecot on loopback (implicit TLS,
one user, a Maildir), as tests/support/dovecot.py starts one for the tests; written again here
because the benchmarks use only the installed package, never tests/.

Messages are put straight into the Maildir (as a delivery agent does: written under tmp/,
renamed into new/), then Dovecot is made to index them, so that the time measured is the
service's reading and not Dovecot's first look at 10,000 new files. As root (dovecot refuses
mail access as root), the mail belongs to `nobody` and the instance lives in a folder of its
own that the unprivileged processes may pass through.
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
from pathlib import Path

from harness import Unavailable

from invoice_mailer.demo.tlscerts import make_ca_and_cert
from invoice_mailer.receipts.imapconnect import ImapAccount, Security

USERNAME = "fatture@bench.example"
PASSWORD = "Bench-2026!"  # noqa: S105 (a throwaway mailbox on loopback)
_SEARCH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin:/usr/bin"
DOVECOT = shutil.which("dovecot", path=_SEARCH)
DOVEADM = shutil.which("doveadm", path=_SEARCH)


class Dovecot:
    """A running private Dovecot; `stop()` ends it (and removes a private root)."""

    def __init__(self, folder: Path, outside: Path) -> None:
        """In `folder`; as root, in a new folder under `outside` instead (the benchmark's work
        folder is private to root: the mail user could not enter it)."""
        if DOVECOT is None or DOVEADM is None:
            raise Unavailable("dovecot is not installed (apt-get install dovecot-imapd)")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            self.root = Path(tempfile.mkdtemp(prefix="invoice-mailer-bench-dovecot-", dir=outside))
            self.root.chmod(0o711)
        else:
            self.root = folder
            self.root.mkdir(parents=True)
        user = pwd.getpwnam("nobody") if self.as_root else pwd.getpwuid(os.getuid())
        self.uid, self.gid = user.pw_uid, user.pw_gid
        self.ca, cert, key = make_ca_and_cert(self.root / "certs")
        home = self.root / "home"
        home.mkdir()
        passwd = self.root / "passwd"
        passwd.write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}\n")
        if self.as_root:
            passwd.chmod(0o644)  # read by the auth process (user dovecot)
            os.chown(home, self.uid, self.gid)
        self.port = _free_port()
        self.config = self.root / "dovecot.conf"
        self.config.write_text(self._settings(cert, key))
        self._counter = 0
        with open(self.root / "stderr.log", "wb") as stderr:  # the child keeps its own copy
            self.process = subprocess.Popen(  # noqa: S603 (the installed dovecot, fixed args)
                [DOVECOT, "-F", "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def maildir(self) -> Path:
        return self.root / "home" / "Maildir"

    def imap_config(self) -> dict:
        """The `receipts.imap` section that reads this mailbox."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "tls",
            "username": USERNAME,
            "password": PASSWORD,
            "ca_file": str(self.ca),
            "timeout": "30s",
        }

    def account(self) -> ImapAccount:
        """The same mailbox for the benchmark's own connection (package's Mailbox)."""
        return ImapAccount("127.0.0.1", USERNAME, PASSWORD, Security.TLS, self.port, self.ca)

    def put(self, messages: list[bytes]) -> None:
        """Deliver each message as an MDA does (tmp/, then a rename into new/), and have Dovecot
        index them all (UIDs, sizes): the state of a mailbox whose mail arrived over days."""
        for sub in ("tmp", "new", "cur"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        self._own(self.maildir, *(self.maildir / sub for sub in ("tmp", "new", "cur")))
        for data in messages:
            self.deliver(data)
        self._doveadm("fetch", "-u", USERNAME, "uid size.virtual", "mailbox", "INBOX")

    def deliver(self, data: bytes) -> float:
        """One message into new/; the time.time() of its rename (when the server can see it)."""
        self._counter += 1
        name = f"{time.time_ns()}.P{os.getpid()}Q{self._counter}.bench"
        temporary = self.maildir / "tmp" / name
        temporary.write_bytes(data)
        self._own(temporary)
        temporary.rename(self.maildir / "new" / name)
        return time.time()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.as_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _own(self, *paths: Path) -> None:
        if self.as_root:
            for path in paths:
                os.chown(path, self.uid, self.gid)

    def _doveadm(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 (the installed doveadm, fixed args)
            [str(DOVEADM), "-c", str(self.config), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=600,
        )

    def _settings(self, cert: Path, key: Path) -> str:
        me = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        root = self.root
        return f"""# A private instance for the benchmark: nothing here is read from /etc/dovecot.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
default_internal_user = {"dovecot" if self.as_root else me}
default_login_user = {"dovenull" if self.as_root else me}
{"" if self.as_root else f"default_internal_group = {group}"}
first_valid_uid = {min(self.uid, 500)}
last_valid_uid = 0
mail_location = maildir:~/Maildir:INDEX=~/index:CONTROL=~/control
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={root}/home
}}
service imap-login {{
{"" if self.as_root else "  chroot ="}
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
{"" if self.as_root else "  chroot ="}
}}
"""

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                stderr = (self.root / "stderr.log").read_text(errors="replace")
                raise RuntimeError(f"dovecot exited at start: {stderr}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not listen in {timeout} s") from None
                time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
