"""What `check` says about the provider preset: which of its values are in force and which the
config overrides (for sending, and for the receipts' mailbox once receipts are on), the
provider's notes, and what is unconfirmed."""

from __future__ import annotations

from typing import Any

from invoice_mailer.config.model import Config
from invoice_mailer.config.presets import Preset, preset_named


def preset_lines(config: Config) -> list[str]:
    """Lines for `check`; none without smtp.provider."""
    smtp = config.smtp
    preset = preset_named(smtp.provider)
    if preset is None:
        return []
    used = [f"{key} {_value(config, key)}" for key in smtp.from_preset]
    overridden = [key for key in _flat_keys(preset.smtp) if key not in smtp.from_preset]
    lines = [f"provider {preset.key} ({preset.name})"]
    lines.append("  from the preset: " + (", ".join(used) or "nothing (the config sets it all)"))
    if overridden:
        given = ", ".join(f"{key} {_value(config, key)}" for key in overridden)
        lines.append(f"  set in the config instead: {given}")
    lines += _receipts_lines(config, preset)
    lines += [f"  note: {note}" for note in preset.notes]
    if preset.unconfirmed:
        lines.append(
            "  not confirmed by the provider's own pages: "
            + ", ".join(preset.unconfirmed)
            + " (compare with the provider's activation e-mail)"
        )
    return lines


def _receipts_lines(config: Config, preset: Preset) -> list[str]:
    """The mailbox: the preset's server and that it is off, or what is read and from where."""
    receipts = config.receipts
    if not receipts.enabled:
        if not preset.imap_host:
            return []
        offer = preset.imap
        where = f"{offer['host']}:{offer.get('port', 993)} ({offer.get('security', 'tls')})"
        return [f"  receipts (IMAP): {where}, off; receipts.enabled: true reads it"]
    imap = receipts.imap
    lines = [f"  receipts (IMAP): {imap.host}:{imap.port} ({imap.security}), on"]
    filled = receipts.from_preset
    if filled:
        used = ", ".join(f"{key} {_value(config, key)}" for key in filled)
        lines.append(f"    from the preset: {used}")
    offered = [f"receipts.imap.{key}" for key in preset.imap]
    offered += ["receipts.pec"] if preset.pec else []
    overridden = [key for key in offered if key not in filled]
    if overridden:
        given = ", ".join(f"{key} {_value(config, key)}" for key in overridden)
        lines.append(f"    set in the config instead: {given}")
    return lines


def _flat_keys(values: dict[str, Any], prefix: str = "smtp") -> list[str]:
    keys: list[str] = []
    for key, value in values.items():
        if isinstance(value, dict):
            keys += _flat_keys(value, f"{prefix}.{key}")
        else:
            keys.append(f"{prefix}.{key}")
    return keys


def _value(config: Config, dotted: str) -> str:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part, None)
    if isinstance(value, bool):
        return str(value).lower()  # as the YAML says it
    return "none" if value is None else str(value)
