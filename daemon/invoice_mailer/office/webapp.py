"""The office's read-only web page (`invoice-mailer web`): search, a document's story with the
exact message sent, the month's register (and its CSV), the held and failed lists.

Read-only by construction: the ledger is opened read-only for each request, files are found
through the ledger by id (never by a path from the request) and only inside state_dir (a
receipt only inside state_dir/receipts/). Every
page is a Jinja2 template with autoescaping: file names and server replies are hostile input.
"""

from __future__ import annotations

import datetime
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, render_template, request, send_file

from invoice_mailer.admin.status import address_book
from invoice_mailer.config.model import Config
from invoice_mailer.errors import LedgerError
from invoice_mailer.ledger import attachments, deliveries, documents, receipts
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DocumentState
from invoice_mailer.office import csvexport, search, story, webauth, wording

PAGE = 100  # search results on one page
REGISTER_PAGE = 2000  # a month on screen; the CSV always has all of it
LIST_LIMIT = 200

# No script, no frame, nothing from elsewhere: the page is HTML and one style sheet.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # invoices are personal data: not kept by the browser
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def create_app(config: Config) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secrets.token_bytes(32), MAX_CONTENT_LENGTH=64 * 1024)
    app.jinja_env.filters.update(when=wording.when, size=wording.size)
    app.jinja_env.globals.update(states=wording.DOCUMENT_STATES, filters=wording.STATE_FILTERS)
    webauth.install(app, dict(config.web.users), webauth.RateLimit())
    state_dir = config.state_dir

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @contextmanager
    def ledger() -> Iterator[Ledger]:
        try:
            opened = Ledger(state_dir, readonly=True)
        except LedgerError:
            # A stopped service leaves no -wal/-shm beside the ledger, and a read-only reader
            # may not create them: the file is then complete and still.
            if not (state_dir / "ledger.db").exists() or (state_dir / "ledger.db-wal").exists():
                abort(503)
            opened = Ledger(state_dir, readonly=True, immutable=True)
        try:
            yield opened
        finally:
            opened.close()

    @app.route("/", endpoint="search")
    def search_page() -> str:
        asked, problems = _asked(request.args)
        found, stories = search.Found(), {}
        if asked.asks_anything and not problems:
            with ledger() as opened:
                found = search.find(opened, asked, PAGE, address_book(config))
                stories = {row["id"]: _line(row) for row in found.rows}
        return render_template(
            "search.html", asked=asked, problems=problems, found=found, rows=stories
        )

    @app.route("/documento/<int:document_id>")
    def document(document_id: int) -> str:
        with ledger() as opened:
            row = documents.get(opened.db, document_id)
            if row is None:
                abort(404)
            told = story.tell(opened, row)
        return render_template("document.html", story=told, doc=told.document)

    @app.route("/documento/<int:document_id>/messaggio/<int:delivery_id>.eml")
    def eml(document_id: int, delivery_id: int) -> Response:
        with ledger() as opened:
            row = _delivery_of(opened, document_id, delivery_id)
            relative = row["eml"]
        return _send(state_dir, relative, f"messaggio-{delivery_id}.eml", "message/rfc822")

    @app.route("/documento/<int:document_id>/ricevuta/<int:receipt_id>.eml")
    def receipt(document_id: int, receipt_id: int) -> Response:
        """A stored receipt, bounce or SdI notice about the document: its exact bytes, the
        office's proof; found by its id in the ledger, and only under state_dir/receipts/."""
        with ledger() as opened:
            row = receipts.about_document(opened.db, receipt_id, document_id)
            if row is None:
                abort(404)
            relative = row["path"]
        name = f"ricevuta-{receipt_id}.eml"
        return _send(state_dir / "receipts", relative, name, "message/rfc822", base=state_dir)

    @app.route("/registro")
    def register() -> str:
        month = _month(request.args.get("mese"))
        with ledger() as opened:
            found = search.register(opened, month, REGISTER_PAGE)
            rows = [_line(row) for row in found.rows]
        return render_template("register.html", month=month, rows=rows, more=found.more)

    @app.route("/registro.csv")
    def register_csv() -> Response:
        month = _month(request.args.get("mese"))
        with ledger() as opened:
            body = csvexport.register_csv(opened, search.register(opened, month).rows)
        headers = {"Content-Disposition": f'attachment; filename="registro-{month:%Y-%m}.csv"'}
        return Response(body, mimetype="text/csv; charset=utf-8", headers=headers)

    @app.route("/in-attesa")
    def held() -> str:
        with ledger() as opened:
            rows = documents.in_state(opened.db, DocumentState.HELD)[-LIST_LIMIT:][::-1]
            lines = [_line(row) for row in rows]
            total = opened.counts()["documents"].get(DocumentState.HELD, 0)
        return render_template("list.html", title="In attesa", rows=lines, total=total, kind="held")

    @app.route("/non-inviati")
    def failed() -> str:
        with ledger() as opened:
            rows = documents.failed(opened.db, newest_first=True, limit=LIST_LIMIT)
            lines = [{**_line(row), "reason": wording.reason(row["failure"])} for row in rows]
            total = documents.count_failed(opened.db)
        return render_template(
            "list.html", title="Non inviati", rows=lines, total=total, kind="failed"
        )

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return render_template("error.html", message="Pagina o documento non trovato."), 404

    @app.errorhandler(503)
    def no_ledger(_error: Exception) -> tuple[str, int]:
        message = "Il registro non si può leggere in questo momento: riprovare tra poco."
        return render_template("error.html", message=message), 503

    return app


def _line(row: Any) -> dict[str, Any]:
    """One document as a line of a table."""
    facts = documents.info_of(row)
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": wording.KINDS.get(row["kind"], row["kind"].upper()),
        "doc": facts.get("doc", ""),
        "number": facts.get("number") or row["number"] or "",
        "date": facts.get("date", ""),
        "customer": " ".join(x for x in (row["customer_code"], row["customer_name"]) if x),
        "state": row["state"],
        "state_label": wording.DOCUMENT_STATES.get(row["state"], row["state"]),
        "taken_at": row["taken_at"],
        "reason": wording.reason(row["reason"]),
    }


def _asked(args: Any) -> tuple[search.Search, list[str]]:
    problems = []
    days = {}
    for key in ("dal", "al"):
        text = args.get(key, "").strip()
        try:
            days[key] = datetime.date.fromisoformat(text) if text else None
        except ValueError:
            problems.append(f"«{text}» non è una data (AAAA-MM-GG)")
            days[key] = None
    states = tuple(DocumentState(s) for s in args.getlist("stato") if s in set(DocumentState))
    text = args.get("q", "")[:500]
    return search.Search(text, days["dal"], days["al"], states), problems


def _month(text: str | None) -> datetime.date:
    try:
        return datetime.date.fromisoformat(f"{text}-01") if text else _this_month()
    except ValueError:
        return _this_month()


def _this_month() -> datetime.date:
    return datetime.date.today().replace(day=1)  # noqa: DTZ011 (the office's own calendar)


def _delivery_of(opened: Ledger, document_id: int, delivery_id: int) -> Any:
    """The message `delivery_id`, only if it carries document `document_id`."""
    if document_id not in attachments.document_ids(opened.db, delivery_id):
        abort(404)
    row = deliveries.by_id(opened.db, delivery_id)
    if row is None:
        abort(404)
    return row


def _send(
    inside: Path, relative: str | None, name: str, mimetype: str, base: Path | None = None
) -> Response:
    """A file the ledger names, only if it lies inside `inside` (no link followed)."""
    if not relative:
        abort(404)
    root = inside.resolve()
    path = ((base or inside) / relative).resolve()
    if not path.is_relative_to(root):
        abort(404)
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        abort(404)
    stream = os.fdopen(handle, "rb")
    return send_file(stream, mimetype=mimetype, as_attachment=True, download_name=name)
