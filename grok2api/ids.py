"""Identifiers that name things and guard nothing: request ids, completion ids, the
request id header Grok's web app sends, and accounts' handles.

The random ones come from the process's Mersenne Twister, which ``random`` reseeds in
every forked worker, not from the operating system: ``os.urandom`` is a system call, and
a chat request needs three such ids. Secrets (keys, sessions) keep using :mod:`secrets`.
"""

from __future__ import annotations

import hashlib
import random

_VARIANT = "89ab"  # the first hex digit of the fourth group: bits 10xx


def random_hex(n_bytes: int = 16) -> str:
    return f"{random.getrandbits(n_bytes * 8):0{n_bytes * 2}x}"


def random_uuid() -> str:
    """A version-4 UUID in its usual text form (RFC 9562 §5.4: version 4, variant ``10``)."""
    h = f"{random.getrandbits(124):031x}"
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{_VARIANT[int(h[15], 16) >> 2]}{h[16:19]}-{h[19:31]}"


def account_id(token: str) -> str:
    """An account's stable handle that says nothing about its token: what the admin API
    takes instead of a token, and what records that must not hold the token store."""
    return hashlib.sha256(token.encode()).hexdigest()[:24]
