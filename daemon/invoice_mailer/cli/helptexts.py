"""What each subcommand's --help says beyond its one line: why one runs it, and examples to
copy. Kept apart from cli.main so the parser stays readable."""

from __future__ import annotations

import argparse
import textwrap

CONFIG = "/etc/invoice-mailer/config.yaml"

_TEXTS: dict[str, tuple[str, str]] = {
    "check": (
        "Read the configuration, the key and the address book, and say what is wrong, with the "
        "line of each problem. Nothing is sent. With --smtp it also connects to the mail "
        "server, starts TLS and logs in, as the service will, and, with receipts on, logs in to "
        "the mailbox and opens its folders (reading and changing nothing).",
        f"""examples:
  invoice-mailer -c {CONFIG} check
  invoice-mailer -c {CONFIG} check --smtp    # and log in to the mail server""",
    ),
    "send-test": (
        "Send one short test message to ADDRESS with the configured sender, server, password "
        "and signature, and print the server's reply. Use it after every change of smtp.*.",
        """examples:
  invoice-mailer send-test amministrazione@example.it
  invoice-mailer -c /etc/invoice-mailer/negozio.yaml send-test me@example.it""",
    ),
    "run": (
        "Run the service in the foreground: watch the export folder and send what arrives. "
        "systemd starts it this way (invoice-mailer.service); stop it with Ctrl-C or SIGTERM.",
        f"""examples:
  systemctl start invoice-mailer                      # as installed (README: Install)
  invoice-mailer -c {CONFIG} -v run    # by hand, with debug logging""",
    ),
    "genkey": (
        "Write a new random key (mode 0600) that encrypts the SMTP password in the config. "
        "A new key makes old enc: tokens useless: run encrypt-password again afterwards.",
        """examples:
  invoice-mailer genkey --key-file /etc/invoice-mailer/secret.key""",
    ),
    "encrypt-password": (
        "Read the SMTP password (asked twice without echo, or one line from standard input) "
        "and print its enc: token, to paste as smtp.password in the config.",
        """examples:
  invoice-mailer encrypt-password --key-file /etc/invoice-mailer/secret.key""",
    ),
    "status": (
        "What was sent, what waits and why: the queue, held documents (no address yet), "
        "failures with their reason, the open Tutto a session and any pause of sending.",
        """examples:
  invoice-mailer status
  invoice-mailer status --find Rossi            # by file name, number, customer or address
  invoice-mailer status --find 4501237          # by a receipt's identificativo (PEC or SdI)
  invoice-mailer status --json | jq '.documents[0]'""",
    ),
    "retry": (
        "Put documents back in the queue: the ones named by id, every failed (--failed) or "
        "held (--held) one; with no argument, deferred messages are tried now. The running "
        "service acts on it within a second.",
        """examples:
  invoice-mailer retry              # deferred messages: now, not at their next attempt
  invoice-mailer retry 12 15        # documents 12 and 15 (ids from `status`)
  invoice-mailer retry --held       # after adding the missing customers to the address book""",
    ),
    "dismiss": (
        "Close a document by hand, with a note kept in the ledger: a failure or a held document "
        "that was dealt with some other way is not sent and leaves the lists (its file moves to "
        "state_dir/closed/); an unconfirmed message that you found in the mailbox's Sent "
        "folder counts as sent.",
        """examples:
  invoice-mailer dismiss 12 --note "consegnata a mano il 3/12"
  invoice-mailer dismiss 15 --note "seen in the Sent folder"   # an unconfirmed message""",
    ),
    "flush": (
        "Close the open Tutto a session now, so the accountant's bundle goes at once instead "
        "of after all_to.session_gap.",
        """examples:
  invoice-mailer flush""",
    ),
    "web": (
        "Serve the office's read-only web page: search any invoice (number, customer, P.IVA, "
        "file name, address), its whole story and the exact message sent, the month's "
        "register and its CSV, the held and failed lists. It listens on web.listen "
        "(127.0.0.1:8080 by default); beyond this machine only with web.users. systemd starts "
        "it as invoice-mailer-web.service.",
        f"""examples:
  invoice-mailer -c {CONFIG} web          # then open http://127.0.0.1:8080/
  systemctl enable --now invoice-mailer-web""",
    ),
    "hash-password": (
        "Read a password for the office's page (asked twice without echo, or one line from "
        "standard input) and print its scrypt hash, to paste under web.users.",
        """examples:
  invoice-mailer hash-password
  web:
    users:
      ufficio: "scrypt$32768$8$1$…"      # the printed line, in quotes""",
    ),
    "login": (
        "Sign in once for smtp.auth: xoauth2 (Microsoft 365 or a custom OAuth2 server): it "
        "prints a web address and a code, you enter the code there with the mailbox's account, "
        "and it stores the refresh token encrypted (same key as the password) in "
        "state_dir/oauth.token. The service then renews its access tokens by itself. Run it "
        "again when the service says 'run invoice-mailer login'; a paused queue resumes at once.",
        f"""examples:
  invoice-mailer -c {CONFIG} login         # as the service's user, or root
  invoice-mailer -c {CONFIG} check --smtp  # which login, valid until when""",
    ),
    "demo": (
        "The whole thing on this machine, in under a minute: a temporary folder, a local mail "
        "server with STARTTLS and a password, the real service, sample invoices. The folder is "
        "removed at the end unless --keep.",
        """examples:
  invoice-mailer demo
  invoice-mailer demo --keep    # keep running: drop your own files in, Ctrl-C to stop""",
    ),
}


def explain(commands: argparse._SubParsersAction) -> None:
    """Give every subcommand its description and examples. One without texts here keeps its
    short help (never a crash); tests/cli/test_cli_help.py fails until it has them."""
    for name, parser in commands.choices.items():
        if name not in _TEXTS:
            continue
        description, epilog = _TEXTS[name]
        parser.description = textwrap.fill(description, width=90)
        parser.epilog = epilog
        parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keeps the examples' lines
