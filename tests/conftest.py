"""Fixtures shared by every test module: the SMTP servers tests send to, and two guards that
fail a test which leaks a thread or reads a file outside the checkout (support/outside.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from invoice_mailer.demo.tlscerts import TestCerts, make_test_certs
from tests.support import outside
from tests.support.helpers import wait_until
from tests.support.roguesmtp import RogueSmtpServer
from tests.support.smtpserver import PASSWORD, USER, SmtpTestServer

GUARD = outside.install(Path(__file__).resolve().parent.parent)


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A read refused inside code that swallowed the error still fails the run.
    if GUARD.reached and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    for path in dict.fromkeys(GUARD.reached):
        terminalreporter.write_line(f"a test read {path}, outside the checkout", red=True)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The export folder the invoicing program writes into."""
    path = tmp_path / "export"
    path.mkdir()
    return path


@pytest.fixture
def other_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A folder on tmpfs (/dev/shm) when tmp_path is elsewhere: renames there fail with EXDEV."""
    shm = Path("/dev/shm")
    if (
        not shm.is_dir()
        or not os.access(shm, os.W_OK)
        or shm.stat().st_dev == tmp_path.stat().st_dev
    ):
        pytest.skip("no second filesystem to copy across")
    path = Path(tempfile.mkdtemp(dir=shm, prefix="invoice-mailer-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every test stops what it starts (as watchdog's own test-suite insists)."""
    before = {t.ident for t in threading.enumerate()}
    yield

    def settled() -> bool:
        return not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]

    try:
        wait_until(settled, timeout=5)
    except AssertionError:
        leaked = [t.name for t in threading.enumerate() if t.ident not in before]
        pytest.fail(f"test leaked threads: {leaked}")


# -- SMTP servers (support/smtpserver.py, support/roguesmtp.py) -----------------------------------


@pytest.fixture(scope="session")
def smtp_certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    """A CA, a server certificate for localhost/127.0.0.1, a self-signed one, a wrong-host one."""
    return make_test_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def start_smtp_server(smtp_certs: TestCerts) -> Iterator[Callable[..., SmtpTestServer]]:
    """start_smtp_server(security, **kwargs): a running SmtpTestServer (cert defaults to the
    good one), stopped when the test ends; for servers smtp_server does not make."""
    servers: list[SmtpTestServer] = []

    def start(security: str = "none", **kwargs: Any) -> SmtpTestServer:
        if security != "none":
            kwargs.setdefault("cert", smtp_certs.server)
        server = SmtpTestServer(security, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest, start_smtp_server) -> SmtpTestServer:
    """The server most tests send to: plain text, no AUTH. Under @with_tls_and_starttls
    (smtpserver.py), implicit TLS or STARTTLS with AUTH required as USER/PASSWORD."""
    security = getattr(request, "param", "none")
    users = {USER: PASSWORD} if security != "none" else None
    return start_smtp_server(security, users=users)


@pytest.fixture
def start_rogue_server() -> Iterator[Callable[..., RogueSmtpServer]]:
    """start_rogue_server(after_dot, **kwargs): a running RogueSmtpServer, stopped at the end."""
    servers: list[RogueSmtpServer] = []

    def start(after_dot: str = "ok", **kwargs: Any) -> RogueSmtpServer:
        servers.append(RogueSmtpServer(after_dot, **kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
