"""The OAuth tests' servers and key: a local sign-in server (tests/support/oauthserver.py)
and a real Fernet key file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from invoice_mailer.config import credentials
from tests.support.oauthserver import OAuthTestServer


@pytest.fixture
def start_oauth_server() -> Iterator[Callable[..., OAuthTestServer]]:
    """start_oauth_server(lifetime=…, …): a running server, stopped when the test ends."""
    servers: list[OAuthTestServer] = []

    def start(**kwargs: Any) -> OAuthTestServer:
        servers.append(OAuthTestServer(**kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def oauth_server(start_oauth_server) -> OAuthTestServer:
    return start_oauth_server()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.key"
    credentials.generate_key(path)
    return path


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path
