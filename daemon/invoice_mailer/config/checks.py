"""Rules across keys, the filesystem, and what would not work once sent: each problem refuses
the config (exit 78); each warning is shown by `check` and leaves the config in force.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.languages import DATE_FIELDS
from invoice_mailer.config.model import BUNDLE_FIELDS, CUSTOMER_FIELDS, Config
from invoice_mailer.config.netnames import non_ascii_local_part
from invoice_mailer.config.templatelanguages import language_warnings
from invoice_mailer.errors import Problem, permission_advice

# Stands for a watch.folder that is missing or wrong, so that it is not reported twice.
PLACEHOLDER_FOLDER = Path(".")

# Public providers that never relay without a login: host suffix -> how to get the password.
_LOGIN_NEEDED = {
    "gmail.com": "an app password (Google account, 2-step verification on)",
    "googlemail.com": "an app password (Google account, 2-step verification on)",
    "office365.com": "the mailbox password",
    "outlook.com": "the mailbox password",
    "hotmail.com": "the mailbox password",
    "live.com": "the mailbox password",
    "aruba.it": "the mailbox password",
    "legalmail.it": "the InfoCert password",
    "postecert.it": "the mailbox password",
    "pec.it": "the mailbox password",
    "libero.it": "the mailbox password",
    "virgilio.it": "the mailbox password",
    "tiscali.it": "the mailbox password",
    "yahoo.com": "an app password",
    "icloud.com": "an app-specific password",
    "me.com": "an app-specific password",
}
_IMPLICIT_TLS_PORTS = (465,)
_STARTTLS_PORTS = (587,)


def cross_checks(config: Config, top: ys.Reader, warnings: list[Problem], port_given: bool):
    """Rules that involve more than one key, the filesystem, or the provider."""
    watch, smtp, customers = config.watch, config.smtp, config.customers
    if watch.folder is not PLACEHOLDER_FOLDER:
        _need(top, "watch.folder", watch.folder, folder=True)
    if _exists(top, "state_dir", config.state_dir) and not config.state_dir.is_dir():
        top.problem("state_dir", f"{config.state_dir} exists and is not a folder")
    if smtp.security == "none" and smtp.password:
        top.problem(
            "smtp.password",
            "a password would travel in clear text with security: none; "
            "use security: tls or starttls, or remove the password",
        )
    _check_port(config, top, port_given)
    _check_login(config, top)
    ca_file = smtp.ca_file
    if ca_file is not None and _need(top, "smtp.ca_file", ca_file) and not ca_file.is_file():
        top.problem("smtp.ca_file", f"{smtp.ca_file} is not a file")
    book = customers.address_book
    suffix_ok = book is None or book.suffix.lower() in (".csv", ".yaml", ".yml")
    if book is not None and _need(top, "customers.address_book", book) and not suffix_ok:
        top.problem("customers.address_book", f"expected a .csv or .yaml file, got {book.name}")
    if config.retry.backoff_max < config.retry.backoff_min:
        top.problem("retry.backoff_max", "must not be shorter than retry.backoff_min")
    if watch.settle <= 0:
        top.problem("watch.settle", "must be longer than 0s")
    if watch.poll_interval <= 0:
        top.problem("watch.poll_interval", "must be longer than 0s")
    for name in ("customer_subject", "customer_body"):
        _check_template(top, name, getattr(config.templates, name), CUSTOMER_FIELDS)
    for name in ("all_to_subject", "all_to_body"):
        _check_template(top, name, getattr(config.templates, name), BUNDLE_FIELDS)
    _check_languages(config, top, warnings)
    _check_local_parts(config, top, warnings)
    _check_receipts(config, top)


_IMAP_IMPLICIT_TLS_PORTS = (993,)
_IMAP_STARTTLS_PORTS = (143,)


def _check_receipts(config: Config, top: ys.Reader) -> None:
    """The mailbox read for receipts: only when receipts are on."""
    receipts = config.receipts
    for key in ("poll", "accept_within", "deliver_within"):
        if getattr(receipts, key) <= 0:
            top.problem(f"receipts.{key}", "must be longer than 0s")
    imap = receipts.imap
    if not receipts.enabled:
        return
    if imap.host is None:
        provider = config.smtp.provider
        top.problem(
            "receipts.enabled",
            "receipts are on but no mailbox server is known: set receipts.imap.host"
            + (f" (the preset {provider} has no IMAP server)" if provider else ", or choose "
               "smtp.provider, whose preset names it"),
        )  # fmt: skip
        return
    if imap.security == "tls" and imap.port in _IMAP_STARTTLS_PORTS:
        top.problem(
            "receipts.imap.port",
            f"port {imap.port} speaks STARTTLS, not implicit TLS: with security: tls use "
            f"port: 993, or keep port: {imap.port} and write security: starttls",
        )
    elif imap.security == "starttls" and imap.port in _IMAP_IMPLICIT_TLS_PORTS:
        top.problem(
            "receipts.imap.port",
            f"port {imap.port} expects implicit TLS, not STARTTLS: with security: starttls use "
            f"port: 143, or keep port: {imap.port} and write security: tls",
        )
    # Without a password of its own the mailbox logs in as the sender does: smtp.password,
    # smtp.password_command (its output), or with auth: xoauth2 the same access tokens.
    smtp_login = config.smtp.auth == "xoauth2" or bool(config.smtp.password_command)
    if not imap.password and not smtp_login:
        top.problem(
            "receipts.imap.password",
            "the mailbox needs a login: set receipts.imap.password (an enc: token, same key), "
            "or smtp.password or smtp.password_command, which it uses by default",
        )
    if not imap.username:
        top.problem("receipts.imap.username", "the mailbox needs a user name")
    if imap.ca_file is not None and imap.ca_file != config.smtp.ca_file:
        key = "receipts.imap.ca_file"
        if _need(top, key, imap.ca_file) and not imap.ca_file.is_file():
            top.problem(key, f"{imap.ca_file} is not a file")
    if len(set(imap.folders)) != len(imap.folders):
        top.problem("receipts.imap.folders", "a folder is named twice")


def _check_languages(config: Config, top: ys.Reader, warnings: list[Problem]) -> None:
    """Every language's templates as the Italian ones, its date format, and what it lacks."""
    for code, language in config.templates.languages.items():
        for name in ("customer_subject", "customer_body"):
            _check_template(top, f"{code}.{name}", getattr(language, name), CUSTOMER_FIELDS)
        date_format = f"{code}.date_format"
        valid = _check_template(top, date_format, language.date_format, DATE_FIELDS)
        months_given = f"templates.{code}.months" in top.lines  # if wrong, it says so itself
        if valid and "{month" in language.date_format and not (language.months or months_given):
            message = f"{{month}} needs the month names: add templates.{code}.months"
            top.problem(f"templates.{date_format}", message)
    language_warnings(config, top, warnings)


def _exists(top: ys.Reader, key: str, path: Path) -> bool:
    """Path.exists(), except that a folder we may not enter is a problem, not a traceback."""
    try:
        return path.exists()
    except PermissionError:
        top.problem(key, f"cannot look at {path}: permission denied; {permission_advice()}")
        return False
    except OSError as exc:
        top.problem(key, f"cannot look at {path}: {exc.strerror}")
        return False


def _need(top: ys.Reader, key: str, path: Path, folder: bool = False) -> bool:
    """True when `path` exists (and is a folder if asked); a problem for `key` otherwise."""
    problems = len(top.problems)
    if not _exists(top, key, path):
        if len(top.problems) == problems:
            top.problem(key, f"{path} does not exist")
        return False
    if folder and not path.is_dir():
        top.problem(key, f"{path} is not a folder")
        return False
    return True


def _check_port(config: Config, top: ys.Reader, port_given: bool) -> None:
    """Implicit TLS on the submission port (or STARTTLS on 465) hangs or fails the handshake."""
    smtp = config.smtp
    if not port_given:
        return
    if smtp.security == "tls" and smtp.port in _STARTTLS_PORTS:
        top.problem(
            "smtp.port",
            f"port {smtp.port} speaks STARTTLS, not implicit TLS: with security: tls use "
            f"port: 465, or keep port: {smtp.port} and write security: starttls",
        )
    elif smtp.security == "starttls" and smtp.port in _IMPLICIT_TLS_PORTS:
        top.problem(
            "smtp.port",
            f"port {smtp.port} expects implicit TLS, not STARTTLS: with security: starttls use "
            f"port: 587, or keep port: {smtp.port} and write security: tls",
        )


def _check_login(config: Config, top: ys.Reader) -> None:
    """A public provider's server refuses every message without a login."""
    smtp = config.smtp
    host = smtp.host.lower().rstrip(".")
    if smtp.password or smtp.password_command or smtp.auth == "xoauth2" or not host:
        return
    for suffix, password in _LOGIN_NEEDED.items():
        if host == suffix or host.endswith("." + suffix):
            top.problem(
                "smtp.password",
                f"{config.smtp.host} accepts mail only after a login: set smtp.password to "
                f"{password}, encrypted with `invoice-mailer encrypt-password`",
            )
            return


def _check_local_parts(config: Config, top: ys.Reader, warnings: list[Problem]) -> None:
    """Names before the @ outside ASCII need SMTPUTF8, which most providers and PEC lack."""
    addresses: list[tuple[str, str | None]] = [("sender.address", config.sender.address)]
    addresses += [(f"copy_to[{i}]", a) for i, a in enumerate(config.copy_to)]
    addresses += [("all_to.address", config.all_to.address), ("alerts.to", config.alerts.to)]
    for key, address in addresses:
        if address and non_ascii_local_part(address):
            warnings.append(Problem(top.line(key), key, smtputf8_warning(address)))


def smtputf8_warning(address: str) -> str:
    return (
        f"{address} has non-ASCII letters before the @: only a server that offers SMTPUTF8 "
        "takes it, and most providers (PEC included) do not; use an ASCII address if there is one"
    )


MAX_FORMAT_WIDTH = 100


def format_spec_problem(spec: str) -> str | None:
    """A field's format spec (`{number:>6}`) within reason: a width of a billion characters
    would fill the memory of whoever renders it."""
    if "{" in spec:
        return f"a field inside the format spec {spec!r}"
    widths = [int(digits) for digits in re.findall(r"\d+", spec)]
    if any(width > MAX_FORMAT_WIDTH for width in widths):
        return f"format spec {spec!r}: a width over {MAX_FORMAT_WIDTH} characters"
    return None


def _check_template(top: ys.Reader, name: str, template: str, allowed: frozenset[str]) -> bool:
    """Syntax and fields of templates.`name`; False (with the problem recorded) when wrong."""
    key = f"templates.{name}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        top.problem(key, f"not a valid template ({exc}); write {{{{ and }}}} for literal braces")
        return False
    good = True
    for _literal, field_name, spec, _conversion in parsed:
        if field_name is None:
            continue
        if spec and (problem := format_spec_problem(spec)):
            top.problem(key, f"{{{field_name}}}: {problem}")
            good = False
        root = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if root not in allowed:
            valid = ", ".join(sorted(allowed))
            top.problem(key, f"unknown field {{{field_name}}} (valid fields: {valid})")
            good = False
    return good
