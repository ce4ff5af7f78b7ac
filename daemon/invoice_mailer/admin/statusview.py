"""How `invoice-mailer status` shows its report: text for an 80-column terminal (local
times), or JSON for scripts (ISO 8601 times with offset). The report comes from status.gather.
"""

from __future__ import annotations

import datetime
import json
import re
import textwrap
import time
from collections.abc import Iterable
from typing import Any

from invoice_mailer.admin.proofs import proof_words, sdi_words
from invoice_mailer.admin.status import FIND_LIMIT, WIDTH
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose


def render_json(report: dict[str, Any]) -> str:
    """The report for scripts and monitoring: times as ISO 8601 in local time with offset."""
    return json.dumps(_iso_times(report), indent=2, ensure_ascii=False)


def _iso_times(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _iso_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_times(v) for v in value]
    if (key.endswith("_at") or key in ("since", "now", "at")) and isinstance(value, int | float):
        moment = datetime.datetime.fromtimestamp(value).astimezone()
        return moment.isoformat(timespec="seconds")
    return value


# C0 and C1 controls, DEL, and the bidirectional overrides that can reorder what a terminal
# shows: a file name or a server reply must not move the cursor or recolour the screen.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with every control character written as an escape (ESC as \\x1b)."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _visible_all(value: Any) -> Any:
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {k: _visible_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible_all(v) for v in value]
    return value


def local_time(moment: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment)) if moment else "-"


def next_try(moment: float, now: float) -> str:
    """HH:MM, with the date when it is not today: "14:05", "09:00 on 2026-12-02"."""
    when, today = time.localtime(moment), time.localtime(now)
    clock = time.strftime("%H:%M", when)
    same_day = (when.tm_year, when.tm_yday) == (today.tm_year, today.tm_yday)
    return clock if same_day else f"{clock} on {time.strftime('%Y-%m-%d', when)}"


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


def purpose_label(purpose: str) -> str:
    """How the office names what a message is for: the bundle is "Tutto a", as in the config."""
    return "Tutto a" if purpose == Purpose.BUNDLE else purpose


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
    if entry["purpose"] == Purpose.BUNDLE:
        return f"Tutto a, {len(names)} document(s)"
    return ", ".join(names) or entry["subject"] or entry["purpose"]


def render_text(report: dict[str, Any]) -> str:
    """The report for a person in an 80-column terminal; control characters made visible."""
    report = _visible_all(report)
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
    lines.append(f"Documents:  {_counts(counts['documents'], DocumentState)}")
    lines.append(f"Messages:   {_counts(counts['deliveries'], DeliveryState)}")
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
    held, failed = counts["documents"].get("held", 0), report["failed_count"]
    if report["held"]:
        lines += ["", f"Held, no address for the customer yet ({held}):"]
        lines += _document_lines(report["held"], held)
        lines += _wrap(
            "Add the customer to the address book (reloaded by itself); after other changes: "
            "`invoice-mailer retry --held`; to close one without sending it: "
            '`invoice-mailer dismiss ID --note "why"`.',
            2,
        )
    if report["failed"] or report["failed_messages"]:
        lines += ["", f"Failed ({failed} document(s)):"]
        lines += _document_lines(report["failed"], failed)
        for entry in report["failed_messages"]:
            lines += _message_lines(entry, entry["last_error"] or "unknown reason")
        lines += _wrap(
            "After fixing the cause: `invoice-mailer retry --failed` (or retry ID); if it was "
            'dealt with otherwise: `invoice-mailer dismiss ID --note "why"`.',
            2,
        )
    if report.get("unconfirmed"):
        lines += ["", "Unconfirmed: sent twice, the server's reply was lost both times:"]
        for entry in report["unconfirmed"]:
            retry = " ".join(str(i) for i in entry.get("document_ids", []))
            lines += _message_lines(entry, f"Message-ID {entry['message_id']}")
            lines += _wrap(why_not_sent(entry), 6)
            if retry:
                lines += _wrap(
                    f"not there: `invoice-mailer retry {retry}`; there: `invoice-mailer dismiss "
                    f'{retry} --note "seen in the Sent folder"`',
                    6,
                )
        lines += _wrap(
            "Look in the Sent folder of the mailbox (or ask the recipient) whether it arrived; "
            "nothing is sent again without you.",
            2,
        )
    if report["deferred"]:
        lines += ["", "To be sent again (deferred):"]
        for entry in report["deferred"]:
            lines += _message_lines(
                entry,
                f"next try at {next_try(entry['next_attempt_at'], report['now'])}; attempts "
                f"so far: {entry['attempts']}",
            )
            lines += _wrap(why_not_sent(entry), 6)
    if report.get("not_delivered"):
        lines += ["", "Not delivered, says the mailbox (receipts, bounces):"]
        for recipient in report["not_delivered"]:
            lines += _wrap(f"{recipient['address']}: {proof_words(recipient)}", 2)
            lines += _wrap(f"Message-ID {recipient['message_id']}", 6)
            if recipient["receipt"]:
                lines.append(f"      {recipient['receipt']}")  # a path is never wrapped
    if report["sent"]:
        lines += ["", "Last sent:"]
        for entry in report["sent"]:
            what = fit(_what(entry), 30)
            to = fit(", ".join(entry["to"]), WIDTH - 23 - len(what))
            lines.append(f"  {local_time(entry['sent_at'])}  {what} → {to}")
            for recipient in entry.get("recipients", []):
                if recipient["proof"] != "sent":
                    lines += _wrap(f"{recipient['address']}: {proof_words(recipient)}", 6)
    return "\n".join(lines)


def why_not_sent(entry: dict[str, Any]) -> str:
    """ "the server said" only when a server said something (a reply code was recorded)."""
    error = entry["last_error"] or "-"
    if entry.get("reply"):
        return f"the server said: {error}"
    if error.startswith("connecting to "):
        return f"could not connect: {error}"
    if error.startswith("no readable reply"):
        return error
    return f"no reply from the server: {error}"


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
    if entry["purpose"] != Purpose.BUNDLE:
        what = f"{purpose_label(entry['purpose'])}: {what}"
    return [f"  {fit(what, WIDTH - 2)}", *_wrap(_recipients(entry), 6), *_wrap(note, 6)]


def _find_lines(report: dict[str, Any]) -> list[str]:
    """Answers "was invoice 123 sent to Rossi?": each match with its story (office/story.py,
    in the office's Italian), every message with its recipients and Message-ID."""
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
        lines.append(f"       {entry['path']}")
        if entry.get("sdi"):
            lines += _wrap(sdi_words(entry), 7)
        messages = {m["id"]: m for m in entry["story"]["messages"]}
        stored = {r["id"]: r for r in entry["story"]["receipts"]}
        for step in entry["story"]["steps"]:
            when = local_time(step["at"]) if step["at"] else " " * 16
            lines += _hanging(f"{when}  ", step["text"], 7)
            if step["kind"] == "message":
                message = messages[step["delivery_id"]]
                lines.append(f"{' ' * 25}Message-ID {message['message_id']}")
                for recipient in message["recipients"]:
                    lines += _wrap(_proof_line(recipient), 25)
            if step["receipt_id"] in stored:
                lines.append(f"{' ' * 25}{stored[step['receipt_id']]['path']}")  # never wrapped
    if plus:
        lines += ["", f"Only the latest {FIND_LIMIT} are shown; search for something longer."]
    return lines


def _hanging(head: str, text: str, indent: int) -> list[str]:
    pad = " " * indent
    return textwrap.wrap(
        head + text,
        WIDTH,
        initial_indent=pad,
        subsequent_indent=pad + " " * len(head),
        break_on_hyphens=False,
        break_long_words=False,  # a path or an address stays whole, to be copied
    )


def _proof_line(recipient: dict[str, Any]) -> str:
    """A recipient with its role and, once the server took the message, its proof in words."""
    said = f": {recipient['words']}" if recipient.get("words") else ""
    return f"{recipient['role']}: {recipient['address']}{said}"
