"""The credential key: where it comes from, what is derived from it, how a value is sealed.

The key is 32 random bytes, written as 64 hex digits or in base64, taken from the
environment variable ``GROK2API_CREDENTIAL_KEY`` or else from ``<DATA_DIR>/credential.key``
(which only its owner may read). Three subkeys are derived from it once, with HKDF-SHA256:
the AES-256-GCM key that seals SSO tokens and ``cf_clearance`` values, the HMAC-SHA256 key
of the index that replaces a token wherever storage keys by it, and a key id that names
the key in the database and in messages without revealing it. Nothing is derived per
account: sealing or opening a value is one AES-GCM call.

A sealed value reads ``g2a-sealed:1:<key id>:<base64(nonce | ciphertext | tag)>``, its
associated data the place it is stored (a record's key and field), so a sealed value
moved to another record does not open.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from grok2api.storage import StorageError

KEY_ENV = "GROK2API_CREDENTIAL_KEY"
KEY_FILE = "credential.key"
#: where ``grok2api storage rotate-key`` keeps the next key until every value is sealed with it
NEW_KEY_FILE = "credential.key.new"
SEALED_PREFIX = "g2a-sealed:1:"
#: the storage key of an account whose token is sealed: this prefix and the token's HMAC
INDEX_PREFIX = "h:"
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_NONCE = 12
_GENERATE = "openssl rand -base64 32"


class CredentialKeyError(StorageError):
    """The key is missing, malformed, unreadable or not the one the database was sealed with."""


def parse_key(text: str, where: str) -> bytes:
    """The 32 bytes of a key written as hex or base64 (standard or URL-safe, padded or not)."""
    text = text.strip()
    if _HEX_KEY.fullmatch(text):
        return bytes.fromhex(text)
    try:
        raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise CredentialKeyError(f"{where} must hold a key of 32 random bytes, as 64 hex digits or base64 "
                                 f"(make one with: {_GENERATE})")
    return raw


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(secret)


class CredentialKey:
    """The subkeys of one credential key; the key itself is not kept."""

    def __init__(self, secret: bytes, source: str) -> None:
        #: where the key came from (the variable's name or the file's path), for messages
        self.source = source
        #: names the key in the database and in messages; reveals nothing of it
        self.kid = _derive(secret, b"grok2api credential key id")[:6].hex()
        self._aead = AESGCM(_derive(secret, b"grok2api credentials v1"))
        self._index_key = _derive(secret, b"grok2api credential index v1")
        self._prefix = f"{SEALED_PREFIX}{self.kid}:"
        self._skip = len(self._prefix)

    def __repr__(self) -> str:
        return f"CredentialKey(kid={self.kid!r}, source={self.source!r})"

    def index(self, token: str) -> str:
        """The storage key standing for ``token``: found again from the token, useless without the key."""
        return INDEX_PREFIX + hmac.digest(self._index_key, token.encode(), "sha256").hex()

    def seal(self, value: str, where: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, value.encode(), where.encode())
        return self._prefix + binascii.b2a_base64(nonce + sealed, newline=False).decode()

    def unseal(self, value: str, where: str) -> str:
        """The plain value; :class:`CredentialKeyError` when it was sealed by another key,
        for another place, or altered. (Called once per account at start: kept lean.)"""
        if not value.startswith(self._prefix):
            raise CredentialKeyError(f"the value at {where} is sealed with key id {sealed_kid(value)}, not {self.kid}")
        try:
            raw = binascii.a2b_base64(value[self._skip:])
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], where.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise CredentialKeyError(f"the sealed value at {where} does not open with key id {self.kid}") from None


def sealed_kid(value: object) -> str | None:
    """The key id a sealed value names; None for a value that is not sealed."""
    if isinstance(value, str) and value.startswith(SEALED_PREFIX):
        return value[len(SEALED_PREFIX):].split(":", 1)[0]
    return None


def read_key_file(path: Path) -> CredentialKey:
    """A key file, refused unless only its owner can read it (as ssh does with private keys)."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialKeyError(f"{path} can be read by others (mode {stat.S_IMODE(mode):o}): "
                                     f"run chmod 600 {path}")
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialKeyError(f"{path} cannot be read: {exc.__class__.__name__}") from None
    return CredentialKey(parse_key(text, str(path)), str(path))


def load_key(data_dir: Path, environ: Mapping[str, str] = os.environ) -> CredentialKey | None:
    """The configured key: ``GROK2API_CREDENTIAL_KEY`` when set, else ``<data_dir>/credential.key``
    when it exists, else None (credentials stay in plain text)."""
    if environ.get(KEY_ENV, "").strip():
        return CredentialKey(parse_key(environ[KEY_ENV], KEY_ENV), KEY_ENV)
    path = data_dir / KEY_FILE
    return read_key_file(path) if path.exists() else None


def write_key_file(path: Path, secret: bytes) -> CredentialKey:
    """Write a new key file readable by its owner only (mode 0600 from its creation)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(base64.b64encode(secret).decode() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return CredentialKey(secret, str(path))


def new_secret() -> bytes:
    return os.urandom(32)
