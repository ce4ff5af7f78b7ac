"""The office's page from the command line: `web` serves it, `hash-password` makes the hashes
its users log in with."""

from __future__ import annotations

import argparse
import getpass
import sys

from invoice_mailer.config.load import config_path
from invoice_mailer.errors import SecretError
from invoice_mailer.service import logsetup


def cmd_web(args: argparse.Namespace) -> int:
    from invoice_mailer.config.load import read_config
    from invoice_mailer.errors import ConfigError, Problem
    from invoice_mailer.office.webserve import exposure_problem, serve

    path = config_path(args.config)
    config, problems, lines = read_config(path)
    if not problems and (refused := exposure_problem(config)):
        problems = [
            Problem(lines.get("web.users") or lines.get("web.listen"), "web.users", refused)
        ]
    if problems:
        raise ConfigError(str(path), problems)
    logsetup.configure(config.log.level, args.verbose)
    serve(config)
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from invoice_mailer.office.passwords import hash_password

    if sys.stdin.isatty():
        first = getpass.getpass("Password for the office's page: ")
        if getpass.getpass("Again, to confirm: ") != first:
            raise SecretError("the two passwords differ; nothing was hashed")
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if len(first) < 8:
        raise SecretError("a password of at least 8 characters, please; nothing was hashed")
    print(hash_password(first))
    return 0
