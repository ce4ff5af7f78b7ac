"""Provider presets (`smtp.provider:`): the table lives in providers.yaml beside this module, so
that updating a host or a limit is a one-line change to data, not to code.

A preset is a layer of defaults under the admin's own `smtp:` keys: `apply_preset` fills in
what the config leaves out, before the config is parsed, so every value goes through the same
validation and any of them can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

# The `smtp:` keys a preset may fill in; `rate` and `oauth` are filled key by key.
PRESET_KEYS = ("host", "port", "security", "auth", "rate", "oauth")
# The `receipts.imap:` keys a preset may fill in, once the admin has turned receipts on.
IMAP_PRESET_KEYS = ("host", "port", "security")


@dataclass(frozen=True)
class Preset:
    """What the project knows about one provider."""

    key: str
    name: str
    pec: bool
    smtp: dict[str, Any]  # values for the config's smtp: section
    imap: dict[str, Any]  # host, port, security for the receipts stage
    username: str = "address"  # address | user-id
    bcc_refused: bool = False
    notes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    unconfirmed: tuple[str, ...] = field(default=())

    @property
    def imap_host(self) -> str | None:
        return self.imap.get("host")


@cache
def presets() -> dict[str, Preset]:
    """Every preset by its key (aruba-pec, legalmail, …), read once from providers.yaml."""
    text = resources.files("invoice_mailer.config").joinpath("providers.yaml").read_text("utf-8")
    table = yaml.safe_load(text)
    return {
        key: Preset(
            key=key,
            name=entry["name"],
            pec=bool(entry.get("pec", False)),
            smtp=dict(entry["smtp"]),
            imap=dict(entry.get("imap") or {}),
            username=entry.get("username", "address"),
            bcc_refused=bool(entry.get("bcc_refused", False)),
            notes=tuple(entry.get("notes") or ()),
            sources=tuple(entry.get("sources") or ()),
            unconfirmed=tuple(entry.get("unconfirmed") or ()),
        )
        for key, entry in table.items()
    }


def preset_named(key: str | None) -> Preset | None:
    return presets().get(key.lower()) if isinstance(key, str) else None


def apply_preset(smtp: dict[str, Any], preset: Preset) -> list[str]:
    """Fill `smtp` (the raw YAML mapping) with the preset's values where the config gives none;
    return the dotted keys filled in, e.g. ["smtp.host", "smtp.rate.per_minute"]."""
    filled: list[str] = []
    for key in PRESET_KEYS:
        if key not in preset.smtp:
            continue
        value = preset.smtp[key]
        if isinstance(value, dict):
            section = smtp.get(key)
            if section is None:
                section = smtp[key] = {}
            if not isinstance(section, dict):
                continue  # the loader reports the wrong shape itself
            for inner, inner_value in value.items():
                if section.get(inner) is None:
                    section[inner] = inner_value
                    filled.append(f"smtp.{key}.{inner}")
        elif smtp.get(key) is None:
            if key == "port" and smtp.get("security") is not None:
                continue  # a security of one's own gets its own default port (465 / 587)
            smtp[key] = value
            filled.append(f"smtp.{key}")
    return filled


def receipts_on(receipts: Any) -> bool:
    """Whether the raw `receipts:` mapping turns the mailbox reading on: `enabled: true`, or
    `enabled` left out with an `imap.host` of the config's own (as before presets existed).
    A preset alone never turns it on: reading a mailbox is the admin's decision."""
    if not isinstance(receipts, dict):
        return False
    enabled = receipts.get("enabled")
    if enabled is None:
        imap = receipts.get("imap")
        return isinstance(imap, dict) and imap.get("host") is not None
    return enabled is True  # anything else than true or false is reported by the loader


def apply_receipts_preset(receipts: dict[str, Any], preset: Preset) -> list[str]:
    """Fill the raw `receipts:` mapping (receipts on) with the preset's IMAP server and, for a
    PEC box, `pec: true`, where the config gives none; return the dotted keys filled in."""
    filled: list[str] = []
    imap = receipts.get("imap")
    if imap is None:
        imap = receipts["imap"] = {}
    if isinstance(imap, dict):  # else the loader reports the wrong shape itself
        for key in IMAP_PRESET_KEYS:
            if key not in preset.imap or imap.get(key) is not None:
                continue
            if key == "port" and imap.get("security") is not None:
                continue  # a security of one's own gets its own default port (993 / 143)
            imap[key] = preset.imap[key]
            filled.append(f"receipts.imap.{key}")
    if preset.pec and receipts.get("pec") is None:
        receipts["pec"] = True
        filled.append("receipts.pec")
    return filled
