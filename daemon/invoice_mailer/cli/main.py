"""The command line: the only place that prints or exits.

Every InvoiceMailerError becomes one sentence on stderr and its exit status (1, or 78 for
configuration problems); usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from invoice_mailer import __version__, errors
from invoice_mailer.cli import helptexts
from invoice_mailer.config import credentials
from invoice_mailer.config.load import config_path, load_config
from invoice_mailer.config.model import DEFAULT_KEY_FILE, Config
from invoice_mailer.errors import EX_CONFIG, InvoiceMailerError, SecretError
from invoice_mailer.service import logsetup

if TYPE_CHECKING:
    from invoice_mailer.delivery.smtp.outcome import SmtpFailure

log = logging.getLogger("invoice_mailer.cli")

Command = Callable[[argparse.Namespace], int]


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
        from invoice_mailer.delivery.smtp.outcome import SmtpFailure
        from invoice_mailer.delivery.smtp.session import SmtpTransport

        password = credentials.smtp_password(smtp)
        transport = SmtpTransport(smtp, password.reveal() if password else None)
        try:
            print(f"SMTP OK: {transport.check()}")
        except SmtpFailure as failure:
            return _smtp_failed("SMTP check failed", failure, config)
    warned = sum(len(found.warnings) for found in report.files)
    warnings = f" ({warned} warning{'s' if warned != 1 else ''} above)" if warned else ""
    print(
        f"config OK: watching {config.watch.folder}, {report.customers}, "
        f"sending via {smtp.host}:{smtp.port} ({smtp.security}){warnings}"
    )
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
    from invoice_mailer.delivery.smtp.outcome import SmtpFailure
    from invoice_mailer.delivery.smtp.session import SmtpTransport

    config = _load(args)
    smtp = config.smtp
    password = credentials.smtp_password(smtp)
    with (
        tempfile.TemporaryDirectory(prefix="invoice-mailer-") as folder,
        SmtpTransport(smtp, password.reveal() if password else None) as transport,
    ):
        path, size = write_test_message(config, args.address, Path(folder))
        try:
            result = transport.send(config.sender.address, (args.address,), path, size)
        except SmtpFailure as failure:
            return _smtp_failed("test message not sent", failure, config)
    print(f"test message sent to {args.address} via {smtp.host}:{smtp.port} ({smtp.security})")
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

    report = status.gather(_load(args), find=args.find)
    print(statusview.render_json(report) if args.json else statusview.render_text(report))
    return 1 if args.find is not None and not report["documents"] else 0


_MAX_ID = 2**63 - 1  # SQLite's largest integer


def _document_id(text: str) -> int:
    digits = text.removeprefix("#")
    valid = digits.isascii() and digits.isdigit() and len(digits) <= 19
    if not valid or not 1 <= int(digits) <= _MAX_ID:
        shown = text if len(text) <= 30 else text[:27] + "..."
        raise argparse.ArgumentTypeError(
            f"expected a document id like 12 (as `invoice-mailer status` lists them), got {shown!r}"
        )
    return int(digits)


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


CONFIG_HELP = (
    "configuration file (default: $INVOICE_MAILER_CONFIG, else /etc/invoice-mailer/config.yaml)"
)
VERBOSE_HELP = "debug logging and full tracebacks"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invoice-mailer",
        description="Sends exported invoices (PDF, FatturaPA XML) by e-mail over SMTP with TLS.",
    )
    parser.add_argument("--version", action="version", version=f"invoice-mailer {__version__}")
    parser.add_argument("-c", "--config", metavar="FILE", help=CONFIG_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser("check", help="validate config, key and address book")
    check.add_argument("--smtp", action="store_true", help="also connect, start TLS and log in")
    check.set_defaults(func=cmd_check)

    send_test = commands.add_parser("send-test", help="send one test message to ADDRESS")
    send_test.add_argument("address", metavar="ADDRESS")
    send_test.set_defaults(func=cmd_send_test)

    run = commands.add_parser("run", help="run the service in the foreground (systemd)")
    run.set_defaults(func=cmd_run)

    genkey = commands.add_parser("genkey", help="write a new encryption key (mode 0600)")
    genkey.add_argument("--key-file", metavar="F", help="where to write it")
    genkey.set_defaults(func=cmd_genkey)

    encrypt = commands.add_parser(
        "encrypt-password", help="read the SMTP password and print its enc: token"
    )
    encrypt.add_argument("--key-file", metavar="F", help="key to use (default: the config's)")
    encrypt.set_defaults(func=cmd_encrypt_password)

    status = commands.add_parser("status", help="what was sent, what waits and why")
    status.add_argument("--json", action="store_true", help="the same as JSON, for scripts")
    status.add_argument(
        "--find", metavar="TEXT", help="documents by file name, number, customer or address"
    )
    status.set_defaults(func=cmd_status)

    retry = commands.add_parser(
        "retry", help="put documents back in the queue (no arguments: deferred ones, now)"
    )
    retry.add_argument("ids", nargs="*", type=_document_id, metavar="ID", help="document ids")
    retry.add_argument("--failed", action="store_true", help="every failed document")
    retry.add_argument("--held", action="store_true", help="every held document")
    retry.set_defaults(func=cmd_retry)

    dismiss = commands.add_parser(
        "dismiss",
        help="close a failed or held document by hand (it is not sent), or record that an "
        "unconfirmed message did arrive",
    )
    dismiss.add_argument("id", type=_document_id, metavar="ID", help="the document id")
    dismiss.add_argument("--note", required=True, help="why (kept in the ledger as history)")
    dismiss.set_defaults(func=cmd_dismiss)

    flush = commands.add_parser("flush", help="close the open Tutto a session now")
    flush.set_defaults(func=cmd_flush)

    demo = commands.add_parser("demo", help="the whole thing with a local mail server")
    demo.add_argument(
        "--keep", action="store_true", help="keep running until Ctrl-C, and keep the folder"
    )
    demo.set_defaults(func=cmd_demo)
    for command in commands.choices.values():  # -c and -v also after the command's name
        command.add_argument(
            "-c", "--config", metavar="FILE", default=argparse.SUPPRESS, help=CONFIG_HELP
        )
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
    helptexts.explain(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    errors.invocation[:] = sys.argv[1:] if argv is None else argv
    logsetup.configure("info", args.verbose)
    try:
        return args.func(args)
    except InvoiceMailerError as exc:
        print(f"invoice-mailer: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except PermissionError as exc:  # a state folder or ledger of the service's user
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"invoice-mailer: cannot use{where}: permission denied; {errors.permission_advice()}",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:
        # `status --json | head`: the reader went away; say nothing more (as cat does).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # the one place an unexpected error becomes one line
        if args.verbose:
            traceback.print_exc()
        else:
            print(
                f"invoice-mailer: unexpected error: {type(exc).__name__}: {exc} "
                "(run with --verbose for the traceback)",
                file=sys.stderr,
            )
        return 1
