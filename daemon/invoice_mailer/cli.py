"""The command line: the only place that prints or exits.

Every InvoiceMailerError becomes one sentence on stderr and its exit status (1, or 78 for
configuration problems); usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from . import __version__, logsetup
from . import secrets as secret_store
from .config import DEFAULT_KEY_FILE, Config, config_path, load_config
from .errors import InvoiceMailerError, SecretError

log = logging.getLogger("invoice_mailer.cli")

Command = Callable[[argparse.Namespace], int]


def _load(args: argparse.Namespace) -> Config:
    config = load_config(config_path(args.config))
    logsetup.configure(config.log.level, args.verbose)
    return config


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    secret_store.smtp_password(config.smtp)  # proves the key and the token
    customers = "no address book"
    book_path = config.customers.address_book
    if book_path is not None:
        from .addressbook import load_address_book

        book = load_address_book(book_path, config.customers.csv)
        for problem in book.problems:
            print(f"{book_path}: {problem}", file=sys.stderr)
        skipped = f" ({book.skipped} rows skipped)" if book.skipped else ""
        customers = f"{len(book)} customer{'s' if len(book) != 1 else ''}{skipped}"
    smtp = config.smtp
    if args.smtp:
        from .smtp import SmtpTransport

        password = secret_store.smtp_password(smtp)
        transport = SmtpTransport(smtp, password.reveal() if password else None)
        print(f"SMTP OK: {transport.check()}")
    print(
        f"config OK: watching {config.watch.folder}, {customers}, "
        f"sending via {smtp.host}:{smtp.port} ({smtp.security})"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .service import run_service

    return run_service(config_path(args.config), args.verbose)


def _key_file_for(args: argparse.Namespace) -> Path:
    if args.key_file:
        return Path(args.key_file)
    path = config_path(args.config)
    if path.exists():
        return secret_store.key_path(_load(args).smtp)
    return DEFAULT_KEY_FILE


def cmd_genkey(args: argparse.Namespace) -> int:
    path = _key_file_for(args)
    secret_store.generate_key(path)
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
    key_file = Path(args.key_file) if args.key_file else secret_store.key_path(_load(args).smtp)
    print(secret_store.encrypt_password(_read_password(), key_file))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invoice-mailer",
        description="Sends exported invoices (PDF, FatturaPA XML) by e-mail over SMTP with TLS.",
    )
    parser.add_argument("--version", action="version", version=f"invoice-mailer {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="configuration file (default: $INVOICE_MAILER_CONFIG, else "
        "/etc/invoice-mailer/config.yaml)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and full tracebacks"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser("check", help="validate config, key and address book")
    check.add_argument("--smtp", action="store_true", help="also connect, start TLS and log in")
    check.set_defaults(func=cmd_check)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.configure("info", args.verbose)
    try:
        return args.func(args)
    except InvoiceMailerError as exc:
        print(f"invoice-mailer: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
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
