"""The ledger's transactions on a real SQLite file: batches (one commit for several steps) and
the in-process writer lock that hands the ledger from one thread to the next."""

from __future__ import annotations

import threading

import pytest

from invoice_mailer.ledger import notices
from invoice_mailer.ledger.database import Ledger
from tests.support.helpers import wait_until


def _notes(ledger: Ledger) -> list[str]:
    return [row["text"] for row in ledger.query("SELECT text FROM notices ORDER BY id")]


def test_a_batch_is_seen_by_others_only_when_it_ends(tmp_path):
    with Ledger(tmp_path) as ledger, Ledger(tmp_path) as other:
        with ledger.batch():
            with ledger.transaction() as db:
                notices.add(db, 1.0, "first")
            with ledger.transaction() as db:
                notices.add(db, 2.0, "second")
            assert _notes(other) == []  # nothing is durable before the one commit
        assert _notes(other) == ["first", "second"]


def test_a_step_that_fails_inside_a_batch_takes_back_only_its_own_writes(tmp_path):
    with Ledger(tmp_path) as ledger, Ledger(tmp_path) as other:
        with ledger.batch():
            with ledger.transaction() as db:
                notices.add(db, 1.0, "kept")
            with pytest.raises(ValueError), ledger.transaction() as db:
                notices.add(db, 2.0, "taken back")
                raise ValueError("this document's trouble")
            with ledger.transaction() as db:
                notices.add(db, 3.0, "also kept")
        assert _notes(other) == ["kept", "also kept"]


def test_a_batch_that_fails_keeps_nothing(tmp_path):
    with Ledger(tmp_path) as ledger:
        with pytest.raises(OSError), ledger.batch():
            with ledger.transaction() as db:
                notices.add(db, 1.0, "lost with the batch")
            raise OSError("the disk")
        assert _notes(ledger) == []
        with ledger.transaction() as db:  # and the ledger takes writes again
            notices.add(db, 2.0, "after")
        assert _notes(ledger) == ["after"]


def test_another_thread_writes_as_soon_as_the_batch_ends(tmp_path):
    """The second writer waits on the lock, not in SQLite's busy loop, and is not refused."""
    entered, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write_from_another_thread(other: Ledger) -> None:
        try:
            entered.set()
            with other.transaction() as db:
                notices.add(db, 2.0, "from the other thread")
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            done.set()

    with Ledger(tmp_path) as ledger, Ledger(tmp_path) as other:
        with ledger.batch() as db:
            notices.add(db, 1.0, "from the batch")
            thread = threading.Thread(target=write_from_another_thread, args=(other,))
            thread.start()
            assert entered.wait(10)
            assert not done.wait(0.2)  # it waits while the batch holds the ledger
        thread.join(10)
        assert errors == []
        assert _notes(ledger) == ["from the batch", "from the other thread"]


def test_a_batch_sees_another_thread_waiting_to_write(tmp_path):
    """How a batch of routing knows to end early: the sender must not wait behind it."""
    done = threading.Event()

    def write(other: Ledger) -> None:
        with other.transaction() as db:
            notices.add(db, 2.0, "the sender's")
        done.set()

    with Ledger(tmp_path) as ledger, Ledger(tmp_path) as other:
        assert not ledger.others_waiting()
        thread = threading.Thread(target=write, args=(other,))
        with ledger.batch() as db:
            notices.add(db, 1.0, "the router's")
            thread.start()
            assert wait_until(ledger.others_waiting, 10)
        assert done.wait(10)
        thread.join(10)
        assert not ledger.others_waiting()
        assert _notes(ledger) == ["the router's", "the sender's"]
