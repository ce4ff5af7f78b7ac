"""What `invoice-mailer status` reports, read from the ledger (read-only, service running or not).

`gather` reads rows and turns them into plain data with pure helpers; `render_text` (80
columns, local times) and `render_json` (ISO 8601 times with offset) show the same data.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import textwrap
import time
from collections.abc import Iterable
from typing import Any

from . import sessions
from .config import Config
from .ledger import Ledger
from .service import is_running

LIST_LIMIT = 20  # per section: enough to act on, short enough to read
SENT_LIMIT = 10
FIND_LIMIT = 50
DOC_STATES = ("taken", "waiting", "routed", "held", "done", "failed")
DELIVERY_STATES = ("queued", "sending", "deferred", "sent", "failed", "retried")
PURPOSES = {"customer": "customer", "copy": "copy", "bundle": "Tutto a", "alert": "alert"}
WIDTH = 80
_DELIVERY_KEYS = ("message_id", "subject", "attempts", "last_error", "reply")
_DELIVERY_TIMES = ("created_at", "sent_at", "next_attempt_at")


# -- reading ------------------------------------------------------------------------------


def gather(config: Config, find: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Everything `status` shows (or, with `find`, the matching documents), as plain data."""
    state_dir = config.state_dir
    report: dict[str, Any] = {
        "state_dir": str(state_dir),
        "service": "running" if is_running(state_dir) else "stopped",
        "ledger": (state_dir / "ledger.db").exists(),
        "now": time.time() if now is None else now,
    }
    if find is not None:
        report.update(find=find, documents=[], more=False)
    else:
        report.update(counts={"documents": {}, "deliveries": {}}, session=None, paused=None)
        report.update(
            {key: [] for key in ("held", "failed", "failed_messages", "deferred", "sent")}
        )
    if not report["ledger"]:
        return report
    with Ledger(state_dir, readonly=True) as ledger:
        if find is not None:
            report["documents"] = _find(ledger, config, find)
            report["more"] = len(report["documents"]) > FIND_LIMIT
            del report["documents"][FIND_LIMIT:]
            return report
        report["counts"] = ledger.counts()
        if config.all_to.address:
            report["session"] = sessions.open_session(ledger, config, report["now"])
        pause = ledger.one("SELECT * FROM pauses ORDER BY since LIMIT 1")
        report["paused"] = dict(pause) if pause is not None else None
        for state, order in (("held", "id"), ("failed", "updated_at DESC, id DESC")):
            rows = ledger.query(
                f"SELECT * FROM documents WHERE state = ? ORDER BY {order} LIMIT {LIST_LIMIT}",
                state,
            )
            report[state] = [document_entry(row, config) for row in rows]
        report["failed_messages"] = _deliveries(
            ledger,
            "state = 'failed' AND purpose IN ('bundle', 'alert') ORDER BY id DESC",
        )
        report["deferred"] = _deliveries(ledger, "state = 'deferred' ORDER BY next_attempt_at")
        report["sent"] = _deliveries(ledger, "state = 'sent' ORDER BY sent_at DESC", SENT_LIMIT)
    return report


def _deliveries(ledger: Ledger, where: str, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    rows = ledger.query(f"SELECT * FROM deliveries WHERE {where} LIMIT {limit}")
    names = _names_by_delivery(ledger, [row["id"] for row in rows])
    return [delivery_entry(row, names.get(row["id"], [])) for row in rows]


def _names_by_delivery(ledger: Ledger, ids: list[int]) -> dict[int, list[str]]:
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    names: dict[int, list[str]] = {}
    for delivery_id, name in ledger.query(
        "SELECT a.delivery_id, d.name FROM attachments a JOIN documents d ON d.id = a.document_id "
        f"WHERE a.delivery_id IN ({marks}) ORDER BY a.delivery_id, a.position",
        *ids,
    ):
        names.setdefault(delivery_id, []).append(name)
    return names


def _find(ledger: Ledger, config: Config, text: str) -> list[dict[str, Any]]:
    """Documents whose name, number, customer or any recipient contains `text` (any case)."""
    needle = text.casefold()
    ledger.db.create_function(
        "matches", 1, lambda value: value is not None and needle in str(value).casefold()
    )
    rows = ledger.query(
        "SELECT * FROM documents d WHERE matches(d.name) OR matches(d.number) "
        "OR matches(d.customer_code) OR matches(d.customer_name) OR d.id IN ("
        "  SELECT a.document_id FROM attachments a JOIN deliveries v ON v.id = a.delivery_id"
        "  WHERE matches(v.to_addrs) OR matches(v.cc_addrs) OR matches(v.bcc_addrs)) "
        f"ORDER BY d.taken_at DESC, d.id DESC LIMIT {FIND_LIMIT + 1}"
    )
    found = [document_entry(row, config) for row in rows]
    ids = [entry["id"] for entry in found]
    marks = ", ".join("?" for _ in ids)
    by_document: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for row in ledger.query(
            "SELECT v.*, a.document_id FROM deliveries v JOIN attachments a "
            f"ON a.delivery_id = v.id WHERE a.document_id IN ({marks}) ORDER BY v.id",
            *ids,
        ):
            by_document.setdefault(row["document_id"], []).append(delivery_entry(row, []))
    for entry in found:
        entry["deliveries"] = by_document.get(entry["id"], [])
    return found


# -- rows to plain data (pure) ------------------------------------------------------------


def document_entry(row: sqlite3.Row, config: Config) -> dict[str, Any]:
    """One document as status shows it; failed ones name their reason file."""
    keys = ("id", "name", "state", "reason", "number", "customer_code", "customer_name", "taken_at")
    entry = {key: row[key] for key in keys}
    entry["path"] = str(config.state_dir / row["location"])
    if row["state"] == "failed" and row["location"].startswith("failed/"):
        entry["reason_file"] = entry["path"] + ".reason.txt"
    return entry


def delivery_entry(row: sqlite3.Row, documents: list[str]) -> dict[str, Any]:
    """One delivery (message) with its recipients, times, Message-ID and the server's words."""
    entry: dict[str, Any] = {"id": row["id"], "purpose": row["purpose"], "state": row["state"]}
    for column, key in (("to_addrs", "to"), ("cc_addrs", "cc"), ("bcc_addrs", "bcc")):
        entry[key] = json.loads(row[column] or "[]")
    entry.update({key: row[key] for key in (*_DELIVERY_KEYS, *_DELIVERY_TIMES)})
    if documents:
        entry["documents"] = documents
    return entry


# -- rendering ------------------------------------------------------------------------------


def render_json(report: dict[str, Any]) -> str:
    """The report for scripts and monitoring: times as ISO 8601 in local time with offset."""
    return json.dumps(_iso_times(report), indent=2, ensure_ascii=False)


def _iso_times(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _iso_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_times(v) for v in value]
    if (key.endswith("_at") or key in ("since", "now")) and isinstance(value, int | float):
        moment = datetime.datetime.fromtimestamp(value).astimezone()
        return moment.isoformat(timespec="seconds")
    return value


def local_time(moment: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment)) if moment else "-"


def fit(text: str, width: int) -> str:
    """Shorten a long name in the middle, keeping its end (number, customer, extension)."""
    if len(text) <= width:
        return text
    tail = min(14, width // 2)
    return text[: width - tail - 1] + "…" + text[-tail:]


def _wrap(text: str, indent: int) -> list[str]:
    pad = " " * indent
    return textwrap.wrap(
        text, WIDTH, initial_indent=pad, subsequent_indent=pad, break_on_hyphens=False
    )


def _counts(counts: dict[str, int], order: Iterable[str]) -> str:
    shown = [s for s in order if counts.get(s)] + sorted(set(counts) - set(order))
    return ", ".join(f"{counts[s]} {s}" for s in shown if counts[s]) or "none"


def _recipients(entry: dict[str, Any]) -> str:
    text = "to " + ", ".join(entry["to"])
    for key in ("cc", "bcc"):
        if entry[key]:
            text += f" ({key} {', '.join(entry[key])})"
    return text


def _what(entry: dict[str, Any]) -> str:
    names = entry.get("documents", [])
    if entry["purpose"] == "bundle":
        return f"Tutto a, {len(names)} document(s)"
    return ", ".join(names) or entry["subject"] or entry["purpose"]


def render_text(report: dict[str, Any]) -> str:
    """The report for a person in an 80-column terminal."""
    running = report["service"] == "running"
    lines = [
        "invoice-mailer: the service is "
        + ("running" if running else "NOT running (nothing is sent until it starts)"),
        f"State folder: {report['state_dir']}",
    ]
    if not report["ledger"]:
        return "\n".join([*lines, "Nothing has been taken yet (no ledger)."])
    if "find" in report:
        return "\n".join(lines + _find_lines(report))
    counts = report["counts"]
    lines.append(f"Documents:  {_counts(counts['documents'], DOC_STATES)}")
    lines.append(f"Messages:   {_counts(counts['deliveries'], DELIVERY_STATES)}")
    if pause := report["paused"]:
        lines += _wrap(
            f"SENDING IS PAUSED since {local_time(pause['since'])}: {pause['reason']}. Next "
            f"check {local_time(pause['check_at'])}; after fixing the settings reload the "
            "service, or run `invoice-mailer retry` to check now.",
            0,
        )
    if session := report["session"]:
        closing, why = f"closes {local_time(session['closes_at'])}", session["closes_because"]
        if session["close_requested"]:
            closing, why = "closing now", "flush requested"
        lines.append(
            f"Tutto a:    {session['count']} document(s) since "
            f"{local_time(session['opened_at'])}, {closing}"
        )
        lines += _wrap(f"({why})", 12)
    held, failed = counts["documents"].get("held", 0), counts["documents"].get("failed", 0)
    if report["held"]:
        lines += ["", f"Held, no address for the customer yet ({held}):"]
        lines += _document_lines(report["held"], held)
        lines += _wrap(
            "Add the customer to the address book (reloaded by itself); after other changes: "
            "`invoice-mailer retry --held`.",
            2,
        )
    if report["failed"] or report["failed_messages"]:
        lines += ["", f"Failed ({failed} document(s)):"]
        lines += _document_lines(report["failed"], failed)
        for entry in report["failed_messages"]:
            lines += _message_lines(entry, entry["last_error"] or "unknown reason")
        lines += _wrap("After fixing the cause: `invoice-mailer retry --failed` (or retry ID).", 2)
    if report["deferred"]:
        lines += ["", "To be sent again (deferred):"]
        for entry in report["deferred"]:
            lines += _message_lines(
                entry,
                f"next attempt {local_time(entry['next_attempt_at'])}; attempts so far: "
                f"{entry['attempts']}",
            )
            lines += _wrap(f"the server said: {entry['last_error'] or '-'}", 6)
    if report["sent"]:
        lines += ["", "Last sent:"]
        for entry in report["sent"]:
            what = fit(_what(entry), 30)
            to = fit(", ".join(entry["to"]), WIDTH - 23 - len(what))
            lines.append(f"  {local_time(entry['sent_at'])}  {what} → {to}")
    return "\n".join(lines)


def _document_lines(entries: list[dict[str, Any]], total: int) -> list[str]:
    lines = []
    for entry in entries:
        lines.append(f"  #{entry['id']:<5} {fit(entry['name'], WIDTH - 9)}")
        lines += _wrap(entry["reason"] or "unknown reason", 9)
        if entry.get("reason_file"):
            lines.append(f"         {entry['reason_file']}")
    if total > len(entries):
        lines.append(f"  … and {total - len(entries)} more")
    return lines


def _message_lines(entry: dict[str, Any], note: str) -> list[str]:
    what = _what(entry)
    if entry["purpose"] != "bundle":
        what = f"{PURPOSES.get(entry['purpose'], entry['purpose'])}: {what}"
    return [f"  {fit(what, WIDTH - 2)}", *_wrap(_recipients(entry), 6), *_wrap(note, 6)]


def _find_lines(report: dict[str, Any]) -> list[str]:
    """Answers "was invoice 123 sent to Rossi?": each match with every message about it."""
    found = report["documents"]
    if not found:
        return [f'No document matches "{report["find"]}".']
    plus = "+" if report.get("more") else ""
    lines = [f'{len(found)}{plus} document(s) match "{report["find"]}":']
    for entry in found:
        name = fit(entry["name"], WIDTH - 9 - len(entry["state"]))
        lines += ["", f"#{entry['id']:<5} {name}: {entry['state']}"]
        customer = " ".join(x for x in (entry["customer_code"], entry["customer_name"]) if x)
        about = [
            f"number {entry['number']}" * bool(entry["number"]),
            f"customer {customer}" * bool(customer),
            f"taken {local_time(entry['taken_at'])}",
        ]
        lines += _wrap(", ".join(x for x in about if x), 7)
        lines += _wrap(entry["reason"] or "", 7)
        lines.append(f"       {entry['path']}")
        for delivery in entry["deliveries"]:
            when = delivery["sent_at"] or delivery["next_attempt_at"] or delivery["created_at"]
            label = PURPOSES.get(delivery["purpose"], delivery["purpose"])
            lines.append(f"       {label:<9}{delivery['state']:<9}{local_time(when)}")
            lines += _wrap(_recipients(delivery), 16)
            lines.append(f"                Message-ID {delivery['message_id']}")
            if delivery["state"] != "sent" and delivery["last_error"]:
                lines += _wrap(f"the server said: {delivery['last_error']}", 16)
        if not entry["deliveries"]:
            lines.append("       no message planned")
    if plus:
        lines += ["", f"Only the latest {FIND_LIMIT} are shown; search for something longer."]
    return lines
