"""The one loader that validates the whole configuration and reports every problem at once,
with line and key. The types themselves are in config/model.py.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any

from invoice_mailer.config import authkeys, keyvalues
from invoice_mailer.config import yamlsource as ys
from invoice_mailer.config.checks import PLACEHOLDER_FOLDER, cross_checks
from invoice_mailer.config.languages import language_code
from invoice_mailer.config.model import (
    CONFIG_ENV,
    CSV_FIELDS,
    DEFAULT_CONFIG,
    DEFAULT_PORTS,
    IMAP_PORTS,
    KINDS,
    AlertsConfig,
    AllToConfig,
    ArchiveConfig,
    Config,
    CsvColumns,
    CsvConfig,
    CustomersConfig,
    ImapConfig,
    LogConfig,
    OAuthConfig,
    RateConfig,
    ReceiptsConfig,
    RetryConfig,
    SenderConfig,
    SmtpConfig,
    WatchConfig,
    WebConfig,
)
from invoice_mailer.config.templatelanguages import ITALIAN_KEYS, read_languages
from invoice_mailer.config.texts import TemplatesConfig
from invoice_mailer.config.yamlread import read_yaml
from invoice_mailer.errors import ConfigError, Problem


def config_path(option: str | None) -> Path:
    """`-c FILE`, else $INVOICE_MAILER_CONFIG, else /etc/invoice-mailer/config.yaml."""
    return Path(option or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: Path) -> Config:
    """Read and validate `path`; raise ConfigError listing every problem with line and key."""
    config, problems, _lines = read_config(path)
    if problems:
        raise ConfigError(str(path), problems)
    return config


def read_config(path: Path) -> tuple[Config, list[Problem], dict[str, int]]:
    """The config (placeholders where a value is wrong), every problem, and the key lines.

    For `check`, which goes on to the key file and the address book; ConfigError only when
    the file cannot be read or parsed at all.
    """
    try:
        data, lines = read_yaml(path)
    except ys.Invalid as exc:
        raise ConfigError(str(path), str(exc)) from None
    if data is None:
        raise ConfigError(str(path), "the file is empty; start from config.example.yaml")
    if not isinstance(data, dict):
        raise ConfigError(str(path), "expected a mapping of keys (watch:, smtp:, …) at the top")
    problems: list[Problem] = []
    from_preset = authkeys.fill_from_preset(data, lines)
    top = ys.Reader(data, lines, problems)
    config = _read_config(top, path.resolve(), from_preset)
    top.finish()
    problems.sort(key=lambda p: (p.line or 0, p.key))
    return config, problems, lines


# Parsers for each field, by dataclass; a field without one here is a nested section.
_PATTERN_LIST = ys.listing(ys.text)
_PARSERS: dict[type, dict[str, Any]] = {
    WatchConfig: {
        "folder": ys.path,
        "patterns": _PATTERN_LIST,
        "ignore": _PATTERN_LIST,
        "method": ys.choice("auto", "events", "polling"),
        "poll_interval": ys.duration,
        "settle": ys.duration,
        "rescan": ys.duration,
        "recursive": ys.boolean,
        "originals": ys.choice("move", "keep"),
        "duplicates": ys.choice("skip", "send"),
        "min_free_space": ys.size,
    },
    SenderConfig: {"address": ys.email_address, "name": ys.single_line},
    RateConfig: {
        "per_minute": ys.integer(1),
        "per_hour": ys.integer(1),
        "per_day": ys.integer(1),
    },
    SmtpConfig: {
        "host": ys.host,
        "security": ys.choice("tls", "starttls", "none"),
        "port": ys.integer(1, 65535),
        "username": ys.single_line,
        "password": ys.text,
        "key_file": ys.path,
        "ca_file": ys.path,
        "timeout": ys.duration,
        "data_timeout": ys.duration,
        "max_message_size": ys.size,
        "auth": ys.choice("password", "xoauth2", "none"),
        "provider": authkeys.provider_key,
        "password_command": authkeys.argv,
    },
    OAuthConfig: {
        "provider": ys.choice("microsoft", "google", "custom"),
        "tenant": authkeys.tenant,
        "client_id": ys.single_line,
        "client_secret": ys.text,
        "device_url": authkeys.endpoint_url,
        "token_url": authkeys.endpoint_url,
        "scope": ys.single_line,
    },
    AllToConfig: {
        "address": ys.email_address,
        "kinds": ys.listing(ys.choice(*KINDS)),
        "session_gap": ys.duration,
        "close_at": keyvalues.clock_time,
        "max_attachments": ys.integer(1, 10_000),
    },
    CsvColumns: dict.fromkeys(CSV_FIELDS, ys.single_line),
    CsvConfig: {
        "delimiter": keyvalues.delimiter,
        "encoding": keyvalues.encoding,
    },
    CustomersConfig: {
        "address_book": ys.path,
        "prefer": ys.choice("pec", "email"),
        "filename": keyvalues.regex,
        "send": ys.listing(ys.choice(*KINDS)),
        "pair_wait": ys.duration,
        "use_xml_pec": ys.boolean,
        "unknown": ys.choice("hold", "skip"),
        "language": language_code,
        "foreign_language": language_code,
    },
    TemplatesConfig: {**dict.fromkeys(ITALIAN_KEYS, ys.text), "languages": read_languages},
    RetryConfig: {
        "attempts_now": ys.integer(1, 100),
        "backoff_min": ys.duration,
        "backoff_max": ys.duration,
        "max_age": ys.duration,
    },
    ArchiveConfig: {"keep_eml": ys.boolean},
    AlertsConfig: {"to": ys.email_address, "interval": ys.duration},
    ImapConfig: {
        "host": ys.host,
        "security": keyvalues.imap_security,
        "port": ys.integer(1, 65535),
        "username": ys.single_line,
        "password": ys.text,
        "ca_file": ys.path,
        "folders": ys.listing(keyvalues.folder),
        "timeout": ys.duration,
        "max_message_size": ys.size,
    },
    ReceiptsConfig: {
        "enabled": ys.boolean,
        "poll": ys.duration,
        "accept_within": ys.duration,
        "deliver_within": ys.duration,
        "pec": ys.boolean,
        "lost_reply_wait": ys.duration,
    },
    LogConfig: {"level": ys.choice("debug", "info", "warning", "error")},
    WebConfig: {
        "listen": keyvalues.listen,
        "users": keyvalues.web_users,
        "trusted_proxy": keyvalues.ip_address,
    },
    Config: {
        "state_dir": ys.path,
        "signature": ys.text,
        "copy_to": ys.listing(ys.email_address),
        "copy_mode": ys.choice("cc", "bcc", "separate"),
    },
}

# Placeholders that keep validation going when a required value is missing or wrong.
_PLACEHOLDERS: dict[str, Any] = {"folder": PLACEHOLDER_FOLDER, "address": "", "host": ""}


def _build(cls: type, reader: ys.Reader) -> Any:
    """Build `cls` from `reader`, each field parsed by _PARSERS or, if a dataclass, recursively."""
    parsers = _PARSERS[cls]
    values: dict[str, Any] = {}
    for spec in fields(cls):
        if spec.name in ("source", "warnings", "from_preset"):
            continue
        if spec.name not in parsers:
            nested = spec.default_factory if spec.default_factory is not MISSING else None
            nested_cls = nested if isinstance(nested, type) else _SECTION_TYPES[spec.name]
            section = reader.section(spec.name)
            values[spec.name] = _build(nested_cls, section)
            section.finish()
            continue
        if spec.name in _SECTION_READERS:  # keys chosen by the admin: the parser reads them
            values[spec.name] = parsers[spec.name](reader)
            continue
        required = spec.default is MISSING and spec.default_factory is MISSING
        default = _PLACEHOLDERS.get(spec.name) if required else spec.default
        values[spec.name] = reader.take(spec.name, parsers[spec.name], default, required)
    return cls(**values)


_SECTION_TYPES = {"watch": WatchConfig, "sender": SenderConfig, "smtp": SmtpConfig}
_SECTION_READERS = ("languages",)  # a field whose parser takes the section's Reader


def _read_config(top: ys.Reader, source: Path, from_preset: tuple[str, ...]) -> Config:
    config: Config = _build(Config, top)
    given = config.smtp
    port = given.port or DEFAULT_PORTS[given.security]
    username = given.username or config.sender.address
    smtp_filled = tuple(key for key in from_preset if key.startswith("smtp."))
    smtp = replace(given, port=port, username=username, from_preset=smtp_filled)
    config = replace(config, smtp=smtp, source=source)
    receipts_filled = tuple(key for key in from_preset if key.startswith("receipts."))
    config = replace(config, receipts=_receipts_defaults(config, receipts_filled))
    warnings: list[Problem] = []
    cross_checks(config, top, warnings, port_given=given.port != 0)
    authkeys.auth_checks(config, top, warnings, username_given=bool(given.username))
    return replace(config, warnings=tuple(warnings))


def _receipts_defaults(config: Config, from_preset: tuple[str, ...]) -> ReceiptsConfig:
    """The mailbox is the sender's: its login and CA default to the SMTP ones. Receipts left
    neither on nor off are on when the config names the IMAP server (the preset's only counts
    after `enabled: true`, and fills imap.host only then)."""
    receipts, smtp = config.receipts, config.smtp
    imap = receipts.imap
    enabled = receipts.enabled if receipts.enabled is not None else imap.host is not None
    filled = replace(
        imap,
        port=imap.port or IMAP_PORTS[imap.security],
        username=imap.username or smtp.username,
        password=imap.password if imap.password is not None else smtp.password,
        ca_file=imap.ca_file if imap.ca_file is not None else smtp.ca_file,
    )
    return replace(receipts, enabled=enabled, imap=filled, from_preset=from_preset)
