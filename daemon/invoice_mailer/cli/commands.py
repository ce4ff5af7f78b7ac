"""What each subcommand does: it calls one stage's function and prints the outcome.

The parser and the one place that turns an error into a sentence and a status are in cli.main.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from invoice_mailer.config import credentials
from invoice_mailer.config.load import config_path, load_config
from invoice_mailer.config.model import DEFAULT_KEY_FILE, Config
from invoice_mailer.errors import EX_CONFIG, SecretError
from invoice_mailer.ledger.states import DocumentState
from invoice_mailer.service import logsetup

if TYPE_CHECKING:
    from invoice_mailer.delivery.smtp.outcome import SmtpFailure


def _load(args: argparse.Namespace) -> Config:
    config = load_config(config_path(args.config))
    logsetup.configure(config.log.level, args.verbose)
    return config


def cmd_check(args: argparse.Namespace) -> int:
    from invoice_mailer.config.checkup import check_all

    report = check_all(config_path(args.config))
    config = report.config
    logsetup.configure(config.log.level, args.verbose)
    for found in report.files:
        print(found.render(), file=sys.stderr)
    if report.failed:
        return EX_CONFIG
    from invoice_mailer.storage import open_to_others

    if warning := open_to_others(config.state_dir):
        print(f"warning: {warning}", file=sys.stderr)
    smtp = config.smtp
    if args.smtp:
        from invoice_mailer.delivery.smtp.logins import make_login
        from invoice_mailer.delivery.smtp.outcome import SmtpFailure
        from invoice_mailer.delivery.smtp.session import SmtpTransport

        transport = SmtpTransport(smtp, make_login(config))
        try:
            print(f"SMTP OK: {transport.check()}")
        except SmtpFailure as failure:
            return _smtp_failed("SMTP check failed", failure, config)
        if config.receipts.enabled:
            from invoice_mailer.receipts.stage import check_mailbox

            print(f"IMAP OK: {check_mailbox(config)}")  # MailboxError: one line, exit 1
    warned = sum(len(found.warnings) for found in report.files)
    warnings = f" ({warned} warning{'s' if warned != 1 else ''} above)" if warned else ""
    receipts = config.receipts.imap
    reading = (
        f"; receipts from {receipts.host}:{receipts.port} ({receipts.security})"
        if config.receipts.enabled
        else ""
    )
    print(
        f"config OK: watching {config.watch.folder}, {report.customers}, "
        f"sending via {smtp.host}:{smtp.port} ({smtp.security}){reading}{warnings}"
    )
    for line in report.about:
        if not (args.smtp and line.startswith("login:")):  # SMTP OK said it, fresher
            print(line)
    return 0


def _smtp_failed(what: str, failure: SmtpFailure, config: Config) -> int:
    """The failure and, where there is one, the hint (shared by check --smtp and send-test)."""
    from invoice_mailer.delivery.smtp.outcome import hint

    print(f"invoice-mailer: {what}: {failure}", file=sys.stderr)
    advice = hint(failure, config.smtp.host, config.smtp.port)
    if advice:
        print(f"hint: {advice}", file=sys.stderr)
    return 1


def cmd_send_test(args: argparse.Namespace) -> int:
    import tempfile

    from invoice_mailer.delivery.outbox import write_test_message
    from invoice_mailer.delivery.smtp.logins import make_login
    from invoice_mailer.delivery.smtp.outcome import SmtpFailure
    from invoice_mailer.delivery.smtp.session import SmtpTransport

    config = _load(args)
    smtp = config.smtp
    with (
        tempfile.TemporaryDirectory(prefix="invoice-mailer-") as folder,
        SmtpTransport(smtp, make_login(config)) as transport,
    ):
        path, size = write_test_message(config, args.address, Path(folder))
        try:
            result = transport.send(config.sender.address, (args.address,), path, size)
        except SmtpFailure as failure:
            return _smtp_failed("test message not sent", failure, config)
        login = transport.login_description()
    print(f"test message sent to {args.address} via {smtp.host}:{smtp.port} ({smtp.security})")
    print(f"login: {login}")
    print(f"the server replied: {result.reply}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from invoice_mailer.service.run import run_service

    return run_service(config_path(args.config), args.verbose)


def _key_file_for(args: argparse.Namespace) -> Path:
    if args.key_file:
        return Path(args.key_file)
    path = config_path(args.config)
    if path.exists():
        return credentials.key_path(_load(args).smtp)
    return DEFAULT_KEY_FILE


def cmd_genkey(args: argparse.Namespace) -> int:
    path = _key_file_for(args)
    credentials.generate_key(path)
    print(f"new key written to {path} (mode 0600); keep a copy somewhere safe")
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("SMTP password: ")
        if getpass.getpass("Again, to confirm: ") != first:
            raise SecretError("the two passwords differ; nothing was encrypted")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_encrypt_password(args: argparse.Namespace) -> int:
    key_file = Path(args.key_file) if args.key_file else credentials.key_path(_load(args).smtp)
    print(credentials.encrypt_password(_read_password(), key_file))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from invoice_mailer.admin import status, statusview
    from invoice_mailer.office.search import Search

    states = tuple(DocumentState(state) for state in args.state or ())
    within = Search(since=args.since, until=args.until, states=states)
    find = args.find if args.find is not None or not within.asks_anything else ""
    report = status.gather(_load(args), find=find, within=within)
    print(statusview.render_json(report) if args.json else statusview.render_text(report))
    return 1 if find is not None and not report["documents"] else 0


def cmd_retry(args: argparse.Namespace) -> int:
    from invoice_mailer.admin.retry import retry
    from invoice_mailer.admin.statusview import visible

    done = retry(_load(args), args.ids, failed=args.failed, held=args.held)
    for prefix, lines in (
        ("queued again", done.requeued),
        ("routed again", done.released),
        ("sent again", done.resent),
    ):
        for line in lines:
            print(visible(f"{prefix}: {line}"))
    if done.due_now:
        print(f"{done.due_now} deferred message(s) are due now")
    if done.unpaused:
        print("the paused queue checks the mail server again now")
    for line in done.skipped:
        print(visible(f"not retried: {line}"), file=sys.stderr)
    if done.anything:
        print(
            "the service acts on it within a second"
            if done.running
            else "the service is not running: it acts on it when it starts"
        )
    return 1 if done.skipped else 0


def cmd_dismiss(args: argparse.Namespace) -> int:
    from invoice_mailer.admin.statusview import visible
    from invoice_mailer.admin.unconfirmed import confirm_arrival
    from invoice_mailer.archive.closing import dismiss
    from invoice_mailer.errors import NothingMatched

    if not args.note.strip():
        print(
            "invoice-mailer: dismiss: --note must say why (it stays in the ledger)", file=sys.stderr
        )
        return 2
    config = _load(args)
    try:
        arrived = confirm_arrival(config, args.id, args.note)
        if arrived:  # the admin saw the unconfirmed message in the Sent folder
            for line in arrived:
                print(visible(line))
            return 0
        done = dismiss(config, args.id, args.note)
    except NothingMatched as exc:  # it names the file: shown with control characters escaped
        print(visible(f"invoice-mailer: {exc}"), file=sys.stderr)
        return exc.exit_status
    print(visible(f"dismissed: {done.label} (it was {done.was}: {done.reason})"))
    print(visible(f"it will not be sent; its file is kept in {done.path}"))
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    from invoice_mailer.bundles.sessions import flush

    done = flush(_load(args))
    when = "within a second" if done.running else "as soon as the service starts"
    print(f"the Tutto a session {done.session_id} ({done.documents} documents) closes {when}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    from invoice_mailer.oauth import signin

    config = _load(args)
    started = signin.begin(config)
    code = started.code
    print(f"To sign in, open {code.verification_uri}")
    print(f"and enter the code {code.user_code}")
    if code.verification_uri_complete:
        print(f"(or open {code.verification_uri_complete} directly)")
    print(
        f"Sign in with the mailbox's account ({config.smtp.username}); this waits up to "
        f"{code.expires_in / 60:.0f} minutes.",
        flush=True,
    )
    done = signin.finish(config, started)
    until = datetime.fromtimestamp(done.tokens.expires_at).astimezone().strftime("%H:%M")
    print(f"signed in: the sign-in is stored encrypted in {done.path} (mode 0600)")
    print(f"the service renews its access tokens by itself (this one is valid until {until})")
    if done.resumed:
        print("the paused queue tries again now")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from invoice_mailer.demo.run import Demo
    from invoice_mailer.demo.table import render_table

    script = Path(sys.executable).with_name("invoice-mailer")
    program = str(script) if script.exists() else "invoice-mailer"
    with Demo(say=print, keep=args.keep) as demo:
        result = demo.run()
        demo.keep = demo.keep or not result.delivered  # its log says why: leave it
        heading = "Delivered" if result.delivered else "NOT everything was delivered"
        print(f"\n{heading} in {result.seconds:.1f} s:\n{render_table(result.rows)}\n")
        if demo.keep:
            print(f"The {result.messages} messages the mail server received: {demo.received}/")
            print(f"The archive (originals and the exact messages sent): {demo.state}/sent/")
            print(f"The config used, with comments: {demo.config}")
            print(f"Try: {program} -c {demo.config} status --find Bianchi")
        if args.keep:
            print(f"\nStill running. Drop your own PDF or XML files into {demo.export}")
            print(f"(named like Fattura_1_2026_C002.pdf; the customers: {demo.folder}/clienti.csv)")
            print("Ctrl-C stops the service and the mail server.", flush=True)
            demo.wait_until_interrupted()
    if demo.keep:
        print(f"The demo folder stays: {demo.folder} (remove it when done)")
    else:
        print(
            f"The demo folder {demo.folder} is removed. To read the {result.messages} messages "
            f"and try your own files: {program} demo --keep"
        )
    for line in result.undelivered:
        print(f"invoice-mailer: not delivered: {line}", file=sys.stderr)
    return 0 if result.delivered else 1
