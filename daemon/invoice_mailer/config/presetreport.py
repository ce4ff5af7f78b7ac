"""What `check` says about the provider preset: which of its values are in force and which the
config overrides, the receipts' IMAP server, the provider's notes, and what is unconfirmed."""

from __future__ import annotations

from typing import Any

from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.config.presets import preset_named


def preset_lines(smtp: SmtpConfig) -> list[str]:
    """Lines for `check`; none without smtp.provider."""
    preset = preset_named(smtp.provider)
    if preset is None:
        return []
    used = [f"{key} {_value(smtp, key)}" for key in smtp.from_preset]
    overridden = [key for key in _flat_keys(preset.smtp) if key not in smtp.from_preset]
    lines = [f"provider {preset.key} ({preset.name})"]
    lines.append("  from the preset: " + (", ".join(used) or "nothing (the config sets it all)"))
    if overridden:
        given = ", ".join(f"{key} {_value(smtp, key)}" for key in overridden)
        lines.append(f"  set in the config instead: {given}")
    if preset.imap_host:
        imap = preset.imap
        lines.append(
            f"  receipts (IMAP): {imap['host']}:{imap.get('port', 993)} "
            f"({imap.get('security', 'tls')})"
        )
    lines += [f"  note: {note}" for note in preset.notes]
    if preset.unconfirmed:
        lines.append(
            "  not confirmed by the provider's own pages: "
            + ", ".join(preset.unconfirmed)
            + " (compare with the provider's activation e-mail)"
        )
    return lines


def _flat_keys(values: dict[str, Any], prefix: str = "smtp") -> list[str]:
    keys: list[str] = []
    for key, value in values.items():
        if isinstance(value, dict):
            keys += _flat_keys(value, f"{prefix}.{key}")
        else:
            keys.append(f"{prefix}.{key}")
    return keys


def _value(smtp: SmtpConfig, dotted: str) -> str:
    value: Any = smtp
    for part in dotted.split(".")[1:]:
        value = getattr(value, part, None)
    return "none" if value is None else str(value)
