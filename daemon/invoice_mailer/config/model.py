"""The configuration as typed, frozen data: every key of docs/DESIGN.md, defaults on the fields.

Secrets are repr=False. config/load.py builds these from YAML and validates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from invoice_mailer.config.languages import ITALIAN
from invoice_mailer.config.texts import TemplatesConfig
from invoice_mailer.errors import Problem

DEFAULT_CONFIG = Path("/etc/invoice-mailer/config.yaml")
CONFIG_ENV = "INVOICE_MAILER_CONFIG"
DEFAULT_KEY_FILE = Path("/etc/invoice-mailer/secret.key")
KINDS = ("pdf", "xml")
DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}
IMAP_PORTS = {"tls": 993, "starttls": 143}

DEFAULT_FILENAME_PATTERN = (
    r"^(?P<doc>Fattura|Ordine)_(?P<number>[^_]+)_(?P<year>\d{4})_(?P<customer>[^_.]+)\.pdf$"
)
# Named groups of customers.filename that mean something to routing.
FILENAME_GROUPS = ("customer", "vat", "tax_code", "email", "doc", "number", "year", "date")
CUSTOMER_FIELDS = frozenset(
    {"doc", "number", "date", "year", "customer_name", "customer_code", "sender_name"}
)
BUNDLE_FIELDS = frozenset({"date", "count", "files", "sender_name", "part", "parts"})
# The address book's fields (customers.csv.columns, the keys of a YAML book).
CSV_FIELDS = ("code", "name", "email", "pec", "vat", "tax_code", "send", "prefer", "language")


@dataclass(frozen=True)
class WatchConfig:
    folder: Path
    patterns: tuple[str, ...] = ("*.pdf", "*.xml", "*.xml.p7m")
    ignore: tuple[str, ...] = (".*", "~$*", "*.tmp", "*.part")
    method: str = "auto"  # auto | events | polling
    poll_interval: float = 5.0
    settle: float = 2.0
    rescan: float = 300.0
    recursive: bool = False
    originals: str = "move"  # move | keep
    duplicates: str = "skip"  # skip | send
    min_free_space: int = 200 * 1024 * 1024  # bytes left free in state_dir: below, intake waits


@dataclass(frozen=True)
class SenderConfig:
    address: str
    name: str = ""


@dataclass(frozen=True)
class RateConfig:
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None


@dataclass(frozen=True)
class OAuthConfig:
    """The app registration `invoice-mailer login` signs in with (smtp.auth: xoauth2)."""

    provider: str = "microsoft"  # microsoft | google | custom
    tenant: str = "common"  # microsoft only: the directory (tenant) id or domain
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)  # "enc:…", if the app has one
    device_url: str | None = None  # custom only: RFC 8628 device authorization endpoint
    token_url: str | None = None  # custom only: RFC 6749 token endpoint
    scope: str | None = None  # None: the provider's default (SMTP, offline access)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    security: str = "tls"  # tls | starttls | none
    port: int = 0  # 0: by security, see DEFAULT_PORTS (filled in by the loader)
    username: str = ""  # "": sender.address (filled in by the loader)
    password: str | None = field(default=None, repr=False)  # "enc:…" token, or plain text
    key_file: Path = DEFAULT_KEY_FILE
    ca_file: Path | None = None
    timeout: float = 60.0
    data_timeout: float = 600.0  # RFC 5321 §4.5.3.2: wait 10 minutes for the reply to the final dot
    rate: RateConfig = field(default_factory=RateConfig)
    max_message_size: int = 25_000_000
    auth: str = "password"  # password | xoauth2 | none (password without one: no login)
    provider: str | None = None  # a preset of config/providers.yaml; the keys above override it
    password_command: tuple[str, ...] = ()  # argv, no shell: its stdout is the password or token
    oauth: OAuthConfig = field(default_factory=OAuthConfig)
    # The dotted keys the provider preset filled in (for `check`); not a key of the file.
    from_preset: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class AllToConfig:
    address: str | None = None
    kinds: tuple[str, ...] = ("pdf", "xml")
    session_gap: float = 600.0
    close_at: str | None = None  # "HH:MM", local time
    max_attachments: int = 50


@dataclass(frozen=True)
class CsvColumns:
    code: str = "Codice"
    name: str = "RagioneSociale"
    email: str = "Email"
    pec: str = "PEC"
    vat: str = "PartitaIVA"
    tax_code: str = "CodiceFiscale"
    send: str = "Invio"  # optional per-customer override: "pdf", "pdf,xml"
    prefer: str = "Preferenza"  # optional per-customer override: "pec" or "email"
    language: str = "Lingua"  # optional: the customer's language, an ISO 639-1 code ("de")


@dataclass(frozen=True)
class CsvConfig:
    delimiter: str = "auto"  # auto (";" or ","), or one character
    encoding: str = "auto"  # auto: UTF-8 (with or without BOM), else Windows-1252
    columns: CsvColumns = field(default_factory=CsvColumns)


@dataclass(frozen=True)
class CustomersConfig:
    address_book: Path | None = None
    csv: CsvConfig = field(default_factory=CsvConfig)
    prefer: str = "pec"  # pec | email
    filename: str = DEFAULT_FILENAME_PATTERN
    send: tuple[str, ...] = ("pdf",)
    pair_wait: float = 30.0
    use_xml_pec: bool = False
    unknown: str = "hold"  # hold | skip
    language: str = ITALIAN  # a customer's language when the address book has none
    foreign_language: str = "en"  # ... and when a FatturaPA XML shows the customer is abroad

    @property
    def filename_regex(self) -> re.Pattern[str]:
        return re.compile(self.filename, re.IGNORECASE)


@dataclass(frozen=True)
class RetryConfig:
    attempts_now: int = 3
    backoff_min: float = 300.0
    backoff_max: float = 3600.0
    max_age: float = 5 * 86400.0


@dataclass(frozen=True)
class ArchiveConfig:
    keep_eml: bool = True


@dataclass(frozen=True)
class AlertsConfig:
    to: str | None = None
    interval: float = 900.0  # at most one alert message per interval


@dataclass(frozen=True)
class ImapConfig:
    """The sender's mailbox, read for receipts; None/"" fields default to smtp's (the loader)."""

    host: str | None = None  # None: smtp.provider's IMAP server when receipts are on
    security: str = "tls"  # tls (implicit, 993) | starttls (143); never clear text
    port: int = 0  # 0: by security, see IMAP_PORTS (filled in by the loader)
    username: str = ""  # "": smtp.username (filled in by the loader)
    password: str | None = field(default=None, repr=False)  # None: smtp.password
    ca_file: Path | None = None  # None: smtp.ca_file (filled in by the loader)
    folders: tuple[str, ...] = ("INBOX",)
    timeout: float = 60.0  # one read from a silent server
    max_message_size: int = 100_000_000  # larger messages are skipped: a receipt is far smaller


@dataclass(frozen=True)
class ReceiptsConfig:
    # Left out (None): on when the config names imap.host itself, as before presets; a preset's
    # IMAP server is read only after `enabled: true`. The loader makes it True or False.
    enabled: bool | None = None
    imap: ImapConfig = field(default_factory=ImapConfig)
    poll: float = 60.0  # IDLE where the server offers it, else this interval
    accept_within: float = 1800.0  # PEC: no accettazione by then -> alert
    deliver_within: float = 86400.0  # PEC recipient with no consegna or failure by then -> alert
    pec: bool = False  # the sender is a PEC mailbox: its provider accepts every message
    lost_reply_wait: float = 600.0  # PEC: after a lost reply, wait this long for the accettazione
    # The dotted keys the provider preset filled in (for `check`); not a key of the file.
    from_preset: tuple[str, ...] = field(default=(), compare=False)

    @property
    def waits_for_acceptance(self) -> bool:
        """A lost reply is first checked against the provider's accettazione."""
        return bool(self.enabled) and self.pec and self.lost_reply_wait > 0


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"


@dataclass(frozen=True)
class WebConfig:
    """`invoice-mailer web`, the office's read-only page (office/)."""

    listen: str = "127.0.0.1:8080"  # host:port; [::1]:8080 for IPv6
    users: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (name, scrypt hash)
    trusted_proxy: str | None = None  # a TLS proxy's address: its X-Forwarded-Proto is believed

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


@dataclass(frozen=True)
class Config:
    watch: WatchConfig
    sender: SenderConfig
    smtp: SmtpConfig
    state_dir: Path = Path("/var/lib/invoice-mailer")
    signature: str = ""
    copy_to: tuple[str, ...] = ()
    copy_mode: str = "cc"  # cc | bcc | separate
    all_to: AllToConfig = field(default_factory=AllToConfig)
    customers: CustomersConfig = field(default_factory=CustomersConfig)
    templates: TemplatesConfig = field(default_factory=TemplatesConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    receipts: ReceiptsConfig = field(default_factory=ReceiptsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    web: WebConfig = field(default_factory=WebConfig)
    source: Path = Path("")
    # What `check` reports without refusing the config (exit 0): it may work, or it may not.
    warnings: tuple[Problem, ...] = field(default=(), repr=False, compare=False)
