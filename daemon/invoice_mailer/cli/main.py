"""The command line: the only place that prints or exits.

Every InvoiceMailerError becomes one sentence on stderr and its exit status (1, or 78 for
configuration problems); usage errors exit 2 (argparse). The subcommands are in cli.commands.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import traceback

from invoice_mailer import __version__, errors
from invoice_mailer.cli import commands, helptexts, officecommands
from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.ledger.states import DocumentState
from invoice_mailer.service import logsetup

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


def _day(text: str) -> datetime.date:
    for layout in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            # A calendar day, no time of day: no zone to attach.
            return datetime.datetime.strptime(text, layout).date()  # noqa: DTZ007
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"expected a day like 2026-03-01 or 01/03/2026, got {text!r}")


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
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = subcommands.add_parser("check", help="validate config, key and address book")
    check.add_argument(
        "--smtp",
        action="store_true",
        help="also connect, start TLS and log in (and to the receipts mailbox, when on)",
    )
    check.set_defaults(func=commands.cmd_check)

    send_test = subcommands.add_parser("send-test", help="send one test message to ADDRESS")
    send_test.add_argument("address", metavar="ADDRESS")
    send_test.set_defaults(func=commands.cmd_send_test)

    run = subcommands.add_parser("run", help="run the service in the foreground (systemd)")
    run.set_defaults(func=commands.cmd_run)

    genkey = subcommands.add_parser("genkey", help="write a new encryption key (mode 0600)")
    genkey.add_argument("--key-file", metavar="F", help="where to write it")
    genkey.set_defaults(func=commands.cmd_genkey)

    encrypt = subcommands.add_parser(
        "encrypt-password", help="read the SMTP password and print its enc: token"
    )
    encrypt.add_argument("--key-file", metavar="F", help="key to use (default: the config's)")
    encrypt.set_defaults(func=commands.cmd_encrypt_password)

    status = subcommands.add_parser("status", help="what was sent, what waits and why")
    status.add_argument("--json", action="store_true", help="the same as JSON, for scripts")
    status.add_argument(
        "--find",
        metavar="TEXT",
        help="documents by number, customer name or code, P.IVA, codice fiscale, file name, "
        "address, Message-ID, or a receipt's identificativo (PEC or SdI), each with its story "
        "and proof of delivery",
    )
    status.add_argument(
        "--from",
        dest="since",
        type=_day,
        metavar="DAY",
        help="--find: taken on or after DAY (2026-03-01 or 01/03/2026)",
    )
    status.add_argument(
        "--to", dest="until", type=_day, metavar="DAY", help="--find: taken on or before DAY"
    )
    status.add_argument(
        "--state",
        action="append",
        choices=[str(s) for s in DocumentState],
        help="--find: only documents in this state (repeatable)",
    )
    status.set_defaults(func=commands.cmd_status)

    retry = subcommands.add_parser(
        "retry", help="put documents back in the queue (no arguments: deferred ones, now)"
    )
    retry.add_argument("ids", nargs="*", type=_document_id, metavar="ID", help="document ids")
    retry.add_argument("--failed", action="store_true", help="every failed document")
    retry.add_argument("--held", action="store_true", help="every held document")
    retry.set_defaults(func=commands.cmd_retry)

    dismiss = subcommands.add_parser(
        "dismiss",
        help="close a failed or held document by hand (it is not sent), or record that an "
        "unconfirmed message did arrive",
    )
    dismiss.add_argument("id", type=_document_id, metavar="ID", help="the document id")
    dismiss.add_argument("--note", required=True, help="why (kept in the ledger as history)")
    dismiss.set_defaults(func=commands.cmd_dismiss)

    flush = subcommands.add_parser("flush", help="close the open Tutto a session now")
    flush.set_defaults(func=commands.cmd_flush)

    web = subcommands.add_parser("web", help="the office's read-only web page (search, story)")
    web.set_defaults(func=officecommands.cmd_web)

    hash_password = subcommands.add_parser(
        "hash-password", help="read a password and print its hash for web.users"
    )
    hash_password.set_defaults(func=officecommands.cmd_hash_password)
    login = subcommands.add_parser(
        "login", help="sign in once for auth: xoauth2 (OAuth2 device code)"
    )
    login.set_defaults(func=commands.cmd_login)

    demo = subcommands.add_parser("demo", help="the whole thing with a local mail server")
    demo.add_argument(
        "--keep", action="store_true", help="keep running until Ctrl-C, and keep the folder"
    )
    demo.set_defaults(func=commands.cmd_demo)
    for command in subcommands.choices.values():  # -c and -v also after the command's name
        command.add_argument(
            "-c", "--config", metavar="FILE", default=argparse.SUPPRESS, help=CONFIG_HELP
        )
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
    helptexts.explain(subcommands)
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
