"""A real, empty ledger in tmp_path for the query modules' tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from invoice_mailer.ledger.database import Ledger


@pytest.fixture
def ledger(tmp_path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "state") as opened:
        yield opened


@pytest.fixture
def db(ledger: Ledger) -> Iterator[sqlite3.Connection]:
    """The connection the query functions take (autocommit: each statement commits)."""
    yield ledger.db
