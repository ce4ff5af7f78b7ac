"""Each receipt is kept byte for byte under state_dir/receipts/YYYY/MM/: the signed bytes are
the office's legal proof. Written aside, fsynced and renamed, under a name made of the folder,
UIDVALIDITY and UID, so a replay after a crash writes the same file again instead of a second.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import re
from pathlib import Path

from invoice_mailer import storage
from invoice_mailer.receipts import mail

RECEIPTS = "receipts"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def receipt_path(
    state_dir: Path, data: bytes, folder: str, uidvalidity: int, uid: int, kind: str
) -> Path:
    """Where the message goes: the month of its own Date (the same on a replay), else now."""
    day = _dated(data) or datetime.datetime.now(datetime.UTC).astimezone()
    name = f"{_safe(folder)}-{uidvalidity}-{uid}-{_safe(kind)}.eml"
    return state_dir / RECEIPTS / f"{day:%Y}" / f"{day:%m}" / name


def store(path: Path, data: bytes) -> None:
    """The whole message or nothing at `path` (mode 0600, as everything in state_dir)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    storage.write_durably(path, lambda out: out.write(data))


def _dated(data: bytes) -> datetime.datetime | None:
    try:
        value = mail.read_headers(data).get("Date")
        moment = email.utils.parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None or not 1990 <= moment.year <= 9999:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._")[:60] or "folder"
