"""Password hashes for `web.users`: scrypt from the standard library (hashlib), printed by
`invoice-mailer hash-password`, checked in constant time.

The format says its own cost, so a later, dearer setting keeps old hashes valid:
`scrypt$N$r$p$SALT$HASH` (salt and hash in unpadded base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# 2**15 × 8 × 128 bytes = 32 MiB and about 0.1 s per check on this kind of machine: slow for a
# guesser, and the login is rate-limited on top (office/webauth.py).
COST, BLOCK, PARALLEL = 2**15, 8, 1
_SHAPE = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{43})")
_MAX_COST = 2**20  # a hash that would need more than 1 GiB is refused, not computed


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=32
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, COST, BLOCK, PARALLEL)
    return f"scrypt${COST}${BLOCK}${PARALLEL}${_b64(salt)}${_b64(digest)}"


def hash_problem(text: str) -> str | None:
    """What is wrong with a configured hash; None when it can be checked."""
    found = _SHAPE.fullmatch(text.strip())
    if not found:
        return "not a hash from `invoice-mailer hash-password` (scrypt$…)"
    n, r, p = (int(found[i]) for i in (1, 2, 3))
    if n < 2 or n & (n - 1) or n > _MAX_COST or not 1 <= r <= 32 or not 1 <= p <= 16:
        return "its scrypt cost is out of range"
    return None


def check_password(password: str, hashed: str) -> bool:
    """Whether `password` is the one `hashed` was made from (constant-time comparison)."""
    if hash_problem(hashed):
        return False
    _, n, r, p, salt, digest = hashed.strip().split("$")
    computed = _derive(password, _unb64(salt), int(n), int(r), int(p))
    return hmac.compare_digest(computed, _unb64(digest))


# A hash to check against when the user name is unknown: the answer takes as long either way.
DUMMY_HASH = "scrypt$32768$8$1$" + "A" * 22 + "$" + "A" * 43
