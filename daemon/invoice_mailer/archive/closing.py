"""Closing a held or failed document without sending it: superseded by a later file for the
same document that was sent, or dismissed by hand (`invoice-mailer dismiss ID --note …`).

The row stays in the ledger as history; the file (and its reason) move to closed/YYYY/MM/,
never deleted. As in the archive, the target is written into the row before the rename
(`moving_to`), so a crash in between is finished by the archive's recover().
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from invoice_mailer import storage
from invoice_mailer.config.model import Config
from invoice_mailer.errors import NothingMatched
from invoice_mailer.ledger import document_changes, documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DISMISSABLE, DocumentState
from invoice_mailer.routing.planning import kind_class
from invoice_mailer.service.lock import is_running

log = logging.getLogger(__name__)

CLOSED = "closed"  # state_dir/closed/YYYY/MM/: superseded and dismissed documents


@dataclass(frozen=True)
class Closed:
    """What `dismiss` did, for the sentence the CLI prints."""

    label: str
    was: str
    reason: str
    path: Path
    running: bool


def same_document(old: sqlite3.Row, new: sqlite3.Row) -> bool:
    """Is `new` a corrected or re-exported file of `old`?

    The same file name; or the same kind, document type, number and year, with either the
    same customer or the very same bytes (a file re-exported under a corrected customer code).
    """
    if old["name"] == new["name"]:
        return True
    if not old["number"] or old["number"] != new["number"]:
        return False
    if kind_class(old["kind"]) != kind_class(new["kind"]):
        return False
    mine, theirs = documents.info_of(old), documents.info_of(new)
    if (mine.get("year"), mine.get("doc")) != (theirs.get("year"), theirs.get("doc")):
        return False
    code = old["customer_code"]
    return old["sha256"] == new["sha256"] or bool(code and code == new["customer_code"])


def supersede_earlier(
    config: Config, ledger: Ledger, sent_ids: Iterable[int], clock: Callable[[], float]
) -> int:
    """Close the held or failed documents that the sent documents `sent_ids` replace."""
    closed = 0
    for new_id in sorted(set(sent_ids)):
        new = documents.get(ledger.db, new_id)
        if new is None:
            continue
        for old in documents.closable_before(ledger.db, new_id, new["name"], new["number"]):
            if not same_document(old, new):
                continue
            reason = f"superseded by document {new_id} ({new['name']}), which was sent"
            try:
                closed += (
                    _close(config, ledger, old, DocumentState.SUPERSEDED, reason, clock())
                    is not None
                )
            except OSError as exc:  # committed: the next start's recover() finishes the move
                log.error("document %d: its file could not be moved to closed/: %s", old["id"], exc)
    return closed


def dismiss(
    config: Config, document_id: int, note: str, clock: Callable[[], float] = time.time
) -> Closed:
    """Close a failed or held document by hand, with the admin's note; it is never sent."""
    if not (config.state_dir / "ledger.db").exists():
        raise NothingMatched(f"nothing to dismiss: no ledger in {config.state_dir} yet")
    with Ledger(config.state_dir) as ledger:
        row = documents.get(ledger.db, document_id)
        if row is None:
            raise NothingMatched(
                f"no document with id {document_id}; `invoice-mailer status` lists them"
            )
        label = f"#{row['id']} {row['name']}"
        failed = documents.failure_of(ledger.db, document_id)
        if row["state"] not in DISMISSABLE and failed is None:
            states = " or ".join(DISMISSABLE)
            raise NothingMatched(f"{label} is {row['state']}, not {states}: nothing to dismiss")
        running = is_running(config.state_dir)
        if row["state"] == DocumentState.ROUTED and running:
            # Still in the spool: the running service's archive is filing it right now.
            raise NothingMatched(f"{label} is being filed as failed; try again in a moment")
        was = DocumentState.FAILED if failed is not None else row["state"]
        before = (failed["failure"] if failed is not None else row["reason"]) or "no reason given"
        reason = f"dismissed by hand: {note.strip()}"
        path = _close(config, ledger, row, DocumentState.DISMISSED, reason, clock(), (was, before))
        if path is None:
            raise NothingMatched(f"{label} changed meanwhile; look at `invoice-mailer status`")
        return Closed(label, was, before, path, running)


def _close(
    config: Config,
    ledger: Ledger,
    row: sqlite3.Row,
    state: DocumentState,
    why: str,
    now: float,
    before: tuple[str, str | None] | None = None,
) -> Path | None:
    """Record the closing and the intent to move, then move; None if the row changed.
    `before`: (state, reason) as the admin knew it, kept in the new reason as history."""
    was, was_why = before or (row["state"], row["reason"])
    reason = f"{why} (it was {was}: {was_why})" if was_why else f"{why} (it was {was})"
    source = config.state_dir / row["location"]
    day = datetime.datetime.fromtimestamp(now, tz=datetime.UTC).astimezone()
    folder = config.state_dir / CLOSED / f"{day:%Y}" / f"{day:%m}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = storage.unique_path(folder, row["name"])
    with ledger.transaction() as db:
        moving_to = storage.relative(config.state_dir, target)
        changed = document_changes.close(db, row["id"], state, reason, moving_to, now, row["state"])
    if not changed:
        return None
    finish_move(ledger, config.state_dir, row["id"], source, target)
    note = (
        f"{row['name']} was closed without being sent.\n\n"
        f"Why:       {reason}\n"
        f"When:      {day:%Y-%m-%d %H:%M:%S}\n"
        f"Document:  {row['id']} (taken from {row['source']})\n"
    )
    storage.write_text_durably(target.with_name(target.name + ".closed.txt"), note)
    # The service logs it; `dismiss` prints its own sentence, with control characters escaped.
    log.log(
        logging.INFO if state == DocumentState.SUPERSEDED else logging.DEBUG,
        "document %d (%s) is %s: %s; its file is in %s",
        *(row["id"], row["name"], state, reason, target),
    )
    return target


def finish_move(ledger: Ledger, state_dir: Path, document_id: int, source: Path, target: Path):
    """Move the file (and a reason file beside it) to the row's `moving_to`, then record it.
    Also what the archive's recover() calls after a crash in between."""
    if source.exists() and not target.exists():
        storage.move(source, target)
    reason_file = source.with_name(source.name + ".reason.txt")
    if reason_file.exists():
        with contextlib.suppress(OSError):
            storage.move(reason_file, target.with_name(target.name + ".reason.txt"))
    with ledger.transaction() as db:
        document_changes.record_moved(db, document_id)
