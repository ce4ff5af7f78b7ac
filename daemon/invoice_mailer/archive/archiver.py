"""Archive: a document leaves the spool only when every delivery of it is done.

Sent documents go to sent/YYYY/MM/ (with the exact .eml sent, if archive.keep_eml), failed
ones to failed/ with NAME.reason.txt beside them. The target is written into the row before
the rename (`moving_to`), so a crash in between is finished by `recover()`. Nothing is deleted.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from invoice_mailer import storage
from invoice_mailer.archive import closing
from invoice_mailer.config.model import Config
from invoice_mailer.delivery import outbox
from invoice_mailer.ledger import deliveries, delivery_changes, document_changes, documents, notices
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose

log = logging.getLogger(__name__)

BATCH = 500  # documents filed per look at the ledger


class Archive:
    """Moves finished documents and sent messages out of the spool."""

    def __init__(self, config: Config, ledger: Ledger, clock: Callable[[], float] = time.time):
        self.config = config
        self.ledger = ledger
        self.clock = clock
        self.state_dir = config.state_dir
        self._sent: list[int] = []

    def step(self) -> int:
        """File every sent message, and every document whose deliveries are all finished;
        return how many documents moved."""
        self._sent = []  # documents that reached their customer in this step
        self.file_sent_messages()
        moved = 0
        while rows := documents.finished_in_spool(self.ledger.db, BATCH):
            moved += self._file(rows)
            if len(rows) < BATCH:
                break
        if self._sent:  # a corrected file was sent: its held or failed forerunners close
            closing.supersede_earlier(self.config, self.ledger, self._sent, self.clock)
        return moved

    def _verdict(self, row: sqlite3.Row) -> tuple[bool, str | None, sqlite3.Row | None]:
        """(failed, reason, the failed delivery) for a document whose deliveries are finished.

        Failed means the customer did not get it; a failed copy or bundle is a notice of its
        own (delivery/recorder.py) and the document is filed as sent.
        """
        if row["state"] == DocumentState.FAILED:
            return True, row["reason"], None
        failure = None
        if row["state"] == DocumentState.ROUTED:
            failure = deliveries.first_failed_customer(self.ledger.db, row["id"])
        if failure is None:
            return False, row["reason"], None
        return True, failure["last_error"] or "the mail server refused it", failure

    def _file(self, rows: list[sqlite3.Row]) -> int:
        """File these documents together: one commit names every target, the files move with
        each folder fsynced once, one commit records them filed (a crash in between is
        finished by recover(), each file on its own); return how many were filed."""
        plans = []
        taken: set[Path] = set()
        for row in rows:
            failed, reason, delivery = self._verdict(row)
            target = self._target(row["name"], failed, taken)
            taken.add(target)
            plans.append((row, target, failed, reason, delivery))
        with self.ledger.transaction() as db:
            for row, target, *_rest in plans:
                document_changes.set_moving_to(
                    db, row["id"], storage.relative(self.state_dir, target)
                )
        sources = [self.state_dir / row["location"] for row, *_rest in plans]
        moves = [(source, plan[1]) for source, plan in zip(sources, plans, strict=True)]
        _moved, error = storage.move_many([(s, t) for s, t in moves if s.exists()])
        # Filed: every document whose file left the spool. One that did not move (the error)
        # stays named in moving_to, and the next step or recover() sees to it.
        done = [plan for source, plan in zip(sources, plans, strict=True) if not source.exists()]
        for row, target, failed, reason, delivery in done:
            if failed:
                self._write_reason(target, row, reason or "unknown", delivery)
        with self.ledger.transaction() as db:
            for row, target, failed, reason, _delivery in done:
                self._record_filed(db, row, target, failed, reason)
        for row, target, failed, reason, _delivery in done:
            self._say_filed(row, target, failed, reason)
        if error is not None:
            raise error
        return len(done)

    def _finish(
        self,
        row: sqlite3.Row,
        target: Path,
        failed: bool,
        reason: str | None,
        delivery: sqlite3.Row | None,
    ) -> None:
        if failed:
            self._write_reason(target, row, reason or "unknown", delivery)
        with self.ledger.transaction() as db:
            self._record_filed(db, row, target, failed, reason)
        self._say_filed(row, target, failed, reason)

    def _record_filed(
        self,
        db: sqlite3.Connection,
        row: sqlite3.Row,
        target: Path,
        failed: bool,
        reason: str | None,
    ) -> None:
        document_changes.record_filed(
            db,
            row["id"],
            storage.relative(self.state_dir, target),
            DocumentState.FAILED if failed else DocumentState.DONE,
            reason,
            self.clock(),
        )
        if failed and row["state"] != DocumentState.FAILED:
            notices.add(db, self.clock(), f"{row['name']} was not sent: {reason}")

    def _say_filed(self, row: sqlite3.Row, target: Path, failed: bool, reason: str | None) -> None:
        if failed:
            log.error("%s failed: %s; it is now in %s", row["name"], reason, target)
        else:
            self._sent.append(row["id"])
            log.debug("archived %s in %s", row["name"], target.parent)

    def _target(self, name: str, failed: bool, taken: set[Path]) -> Path:
        if failed:
            folder = self.state_dir / storage.FAILED
        else:
            day = datetime.datetime.fromtimestamp(self.clock(), tz=datetime.UTC).astimezone()
            folder = self.state_dir / storage.SENT / f"{day:%Y}" / f"{day:%m}"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return storage.unique_path(folder, name, taken)

    def _write_reason(
        self, target: Path, row: sqlite3.Row, reason: str, delivery: sqlite3.Row | None
    ) -> None:
        """NAME.reason.txt: what failed, what the server said, when, how often, what to do."""
        when = (
            datetime.datetime.fromtimestamp(self.clock(), tz=datetime.UTC)
            .astimezone()
            .strftime("%Y-%m-%d %H:%M:%S")
        )
        if delivery is None:
            what = "the file itself: it cannot be sent as it is"
            attempts, reply = 0, "none (nothing was sent)"
            fix = "replace the file in the export folder with a good one, or"
        else:
            to = ", ".join(
                address
                for column in ("to_addrs", "cc_addrs", "bcc_addrs")
                for address in json.loads(delivery[column])
            )
            what = f"the message to {to} (Message-ID {delivery['message_id']})"
            attempts, reply = delivery["attempts"], delivery["reply"] or "none"
            fix = "fix the cause (the address in the address book, the mail server), then"
        text = (
            f"{row['name']} was not sent.\n\n"
            f"What failed:   {what}\n"
            f"Reason:        {reason}\n"
            f"Server reply:  {reply}\n"
            f"When:          {when}\n"
            f"Attempts:      {attempts}\n"
            f"Document:      {row['id']} (taken from {row['source']})\n\n"
            f"To send it again, {fix} run:\n"
            f"    invoice-mailer retry {row['id']}\n"
        )
        storage.write_text_durably(target.with_name(target.name + ".reason.txt"), text)

    def file_message(self, delivery: sqlite3.Row, label: str) -> str | None:
        """Keep the exact message sent next to the archive (or drop it if keep_eml is off);
        where it is kept, relative to state_dir."""
        return self.file_messages([(delivery, label)])[0]

    def file_messages(self, sent: list[tuple[sqlite3.Row, str]]) -> list[str | None]:
        """file_message() for several messages: one commit names every target (or forgets
        the files) before they move, each folder fsynced once; a crash in between is finished
        by file_sent_messages(). A message whose file is gone is kept nowhere (None)."""
        here = [(row, self.state_dir / row["eml"]) for row, _label in sent if row["eml"]]
        present = {row["id"] for row, source in here if source.exists()}
        targets: dict[int, str | None] = {}
        taken: set[Path] = set()
        for row, label in sent:
            if row["id"] not in present or not self.config.archive.keep_eml:
                continue
            day = datetime.datetime.fromtimestamp(self.clock(), tz=datetime.UTC).astimezone()
            folder = self.state_dir / storage.SENT / f"{day:%Y}" / f"{day:%m}"
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            target = storage.unique_path(folder, f"{label}.eml", taken)
            taken.add(target)
            targets[row["id"]] = storage.relative(self.state_dir, target)
        with self.ledger.transaction() as db:
            for row, _source in here:
                if row["id"] in present:
                    delivery_changes.set_eml(db, row["id"], targets.get(row["id"]))
        moves = []
        for row, source in here:
            if row["id"] not in present:
                continue
            if row["id"] in targets:
                moves.append((source, self.state_dir / str(targets[row["id"]])))
            else:
                os.unlink(source)
        _moved, error = storage.move_many(moves)
        if error is not None:
            raise error  # the rows name their targets: file_sent_messages() moves the rest
        return [targets.get(row["id"]) if row["id"] in present else None for row, _ in sent]

    def file_sent_messages(self) -> int:
        """File the .eml of every sent message still in outgoing/ (the sender thread leaves
        that to us), and finish filings a crash cut short; return how many were filed."""
        to_file: list[tuple[sqlite3.Row, str]] = []
        for entry in os.scandir(self.state_dir / storage.OUTGOING):
            if entry.name.startswith(".") or not entry.name.endswith(".eml"):
                continue
            row = deliveries.by_eml(self.ledger.db, f"{storage.OUTGOING}/{entry.name}")
            if row is None:
                number = entry.name.removesuffix(".eml")
                # "12-rest.eml" (a copy for recipients the server takes later) is no row's id.
                row = deliveries.by_id(self.ledger.db, int(number)) if number.isdecimal() else None
                if row is not None and row["state"] == DeliveryState.SENT:
                    if row["eml"] is None:  # keep_eml off: the row already forgot it
                        os.unlink(entry.path)
                    elif row["eml"].startswith(f"{storage.SENT}/"):
                        storage.move(Path(entry.path), self.state_dir / row["eml"])
                continue
            if row["state"] == DeliveryState.SENT:
                carried = documents.of_delivery(self.ledger.db, row["id"])
                to_file.append((row, outbox.label_of(row, carried)))
                if row["purpose"] == Purpose.CUSTOMER:
                    self._sent += [document["id"] for document in carried]
        self.file_messages(to_file)
        return len(to_file)

    def _finish_requeue(self, row: sqlite3.Row, target: Path) -> None:
        """`retry` committed "back to the spool" and a crash stopped the move: finish it."""
        source = self.state_dir / row["location"]
        if not target.exists() and source.exists():
            storage.move(source, target)
        with self.ledger.transaction() as db:
            document_changes.record_moved(db, row["id"])

    def recover(self) -> int:
        """Finish archive moves (and `retry` moves) that a crash interrupted."""
        rows = documents.moving(self.ledger.db)
        for row in rows:
            target = self.state_dir / row["moving_to"]
            if row["moving_to"].startswith(f"{storage.SPOOL}/"):
                self._finish_requeue(row, target)
            elif row["state"] in (DocumentState.SUPERSEDED, DocumentState.DISMISSED):
                source = self.state_dir / row["location"]
                closing.finish_move(self.ledger, self.state_dir, row["id"], source, target)
            elif (self.state_dir / row["location"]).exists():
                # The rename never happened: forget the intent, step() files it again.
                with self.ledger.transaction() as db:
                    document_changes.set_moving_to(db, row["id"], None)
            else:
                failed, reason, delivery = self._verdict(row)
                self._finish(row, target, failed, reason, delivery)
        self.file_sent_messages()
        return len(rows)
