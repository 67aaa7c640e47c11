"""Credentials encrypted at rest: a :class:`Storage` that seals them on the way into an engine.

With a credential key (:mod:`grok2api.storage.credentials`) the gateway talks to its
engine through :class:`SealedStorage`. Callers keep using tokens: the account namespace
and the counters keyed by token are stored under the token's keyed hash (its *index*),
each account record holds its token sealed (AES-GCM), and named fields of other records
(``grok.cf_clearance`` in the stored config) are sealed too. Change-feed entries name
the index; this storage maps them back to tokens for its readers, opening the record of
an account it has not seen yet. Without a key the engine is used as it is, and start-up
says that credentials are stored in plain text.

:func:`prepare` runs at every start: it checks the database's sealing state against the
key, and seals a plain-text database (or finishes an interrupted sealing or rotation)
under the migration lock. :func:`rotate` re-seals everything with a new key
(``grok2api storage rotate-key``). Both move each account from its old storage key to
its new one in chunks, in an order that a crash at any point leaves to be finished by
running them again: new record, its counters copied, the old counters, the old record.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grok2api.logs.logger import logger
from grok2api.storage import JSON, Change, LogEntry, Storage, StorageError, now_ms
from grok2api.storage.credentials import (
    INDEX_PREFIX,
    KEY_ENV,
    KEY_FILE,
    NEW_KEY_FILE,
    CredentialKey,
    CredentialKeyError,
    load_key,
    new_secret,
    parse_key,
    read_key_file,
    sealed_kid,
    write_key_file,
)
from grok2api.storage.migrations import NS_STORAGE, held

#: the record of ``storage`` holding the sealing state: ``{"kid", "next", "at_ms"}``
CREDENTIALS_KEY = "credentials"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Secrets:
    """What is sealed: the records of ``accounts`` (keyed by token, which their ``token``
    field holds too), the counter namespaces keyed by token, and named fields of single records."""

    accounts: str
    token_counters: tuple[str, ...]
    #: ``(namespace, record key) -> field names``
    fields: Mapping[tuple[str, str], tuple[str, ...]]


class SealedStorage(Storage):
    """An engine whose credentials are sealed with ``key``; every other call passes through."""

    def __init__(self, inner: Storage, key: CredentialKey, secrets: Secrets) -> None:
        self.inner = inner
        self.key = key
        self.secrets = secrets
        self.name, self.schema_version, self.feed_max = inner.name, inner.schema_version, inner.feed_max
        #: keys that open values, by key id: the sealing key, and during a rotation the next one too
        self._openers = {key.kid: key}
        self._token_of: dict[str, str] = {}  # index -> token, of every account seen
        self._index_of: dict[str, str] = {}  # token -> index

    def __getattr__(self, name: str) -> Any:
        """The engine's own attributes (``settings``, ``transaction`` and the like, for tools and tests)."""
        if name == "inner":  # not set yet: never recurse
            raise AttributeError(name)
        return getattr(self.inner, name)

    @functools.cached_property
    def origin(self) -> str:
        return self.inner.origin

    def also_open(self, key: CredentialKey) -> None:
        """Open values sealed with ``key`` too (while :func:`rotate` moves them to it)."""
        self._openers[key.kid] = key

    def rekey(self, key: CredentialKey) -> None:
        """Seal with ``key`` from now on (after :func:`rotate` moved everything to it)."""
        self.key = key
        self._openers = {key.kid: key}
        self._token_of.clear()
        self._index_of.clear()

    def _unseal(self, value: str, where: str) -> str:
        if len(self._openers) == 1:  # the usual case: no rotation under way
            return self.key.unseal(value, where)
        return self._openers.get(sealed_kid(value) or "", self.key).unseal(value, where)

    # tokens and indexes ------------------------------------------------------
    def _index(self, token: str) -> str:
        return self._index_of.get(token) or self.key.index(token)

    def _remember(self, token: str, index: str) -> None:
        self._index_of[token] = index
        self._token_of[index] = token

    def _token(self, index: str) -> str:
        """The token of an index seen before; the index itself otherwise (an account never read here)."""
        return self._token_of.get(index, index)

    def _seal_account(self, index: str, token: str, record: JSON) -> JSON:
        self._remember(token, index)
        return {**record, "token": self.key.seal(token, index)}

    def _open_account(self, index: str, record: JSON) -> str | None:
        """Put the token back into ``record`` (in place); None (logged) when it does not open."""
        token = self._token_of.get(index)
        if token is None:
            try:
                token = self._unseal(str(record.get("token", "")), index)
            except CredentialKeyError as exc:
                logger.warning("storage: skipping an account: {}", exc)
                return None
            self._remember(token, index)
        record["token"] = token
        return token

    def _fields(self, ns: str, key: str) -> tuple[str, ...]:
        return self.secrets.fields.get((ns, key), ())

    def _seal_fields(self, ns: str, key: str, record: JSON) -> JSON:
        names = [n for n in self._fields(ns, key) if isinstance(record.get(n), str) and record[n]]
        if not names:
            return record
        return {**record, **{n: self.key.seal(record[n], f"{ns}/{key}/{n}") for n in names}}

    def _open_fields(self, ns: str, key: str, record: JSON) -> JSON:
        for name in self._fields(ns, key):
            value = record.get(name)
            if sealed_kid(value) is not None:
                try:
                    record[name] = self._unseal(str(value), f"{ns}/{key}/{name}")
                except CredentialKeyError as exc:
                    logger.warning("storage: dropping a sealed value: {}", exc)
                    del record[name]
        return record

    def _has_fields(self, ns: str) -> bool:
        return any(field_ns == ns for field_ns, _ in self.secrets.fields)

    # lifecycle ---------------------------------------------------------------
    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    # records -----------------------------------------------------------------
    async def get(self, ns: str, key: str) -> JSON | None:
        return (await self.get_many(ns, [key])).get(key)

    async def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, JSON]:
        if ns == self.secrets.accounts:
            by_index = {self._index(token): token for token in keys}
            found = await self.inner.get_many(ns, list(by_index))
            out = {}
            for index, record in found.items():
                self._remember(by_index[index], index)
                record["token"] = by_index[index]
                out[by_index[index]] = record
            return out
        found = await self.inner.get_many(ns, keys)
        if self._has_fields(ns):
            return {key: self._open_fields(ns, key, record) for key, record in found.items()}
        return found

    async def list(self, ns: str, *, prefix: str = "") -> dict[str, JSON]:
        if ns == self.secrets.accounts:
            out = {}
            for index, record in (await self.inner.list(ns)).items():
                token = self._open_account(index, record)
                if token is not None and token.startswith(prefix):
                    out[token] = record
            return out
        found = await self.inner.list(ns, prefix=prefix)
        if self._has_fields(ns):
            return {key: self._open_fields(ns, key, record) for key, record in found.items()}
        return found

    async def namespaces(self) -> builtins.list[str]:
        return await self.inner.namespaces()

    def _sealed_items(self, ns: str, items: Mapping[str, JSON]) -> dict[str, JSON]:
        if ns == self.secrets.accounts:
            return {(index := self._index(token)): self._seal_account(index, token, record)
                    for token, record in items.items()}
        return {key: self._seal_fields(ns, key, record) for key, record in items.items()}

    async def put(self, ns: str, key: str, data: JSON, *, ttl: float | None = None) -> None:
        ((stored_key, record),) = self._sealed_items(ns, {key: data}).items()
        await self.inner.put(ns, stored_key, record, ttl=ttl)

    async def put_many(self, ns: str, items: Mapping[str, JSON]) -> None:
        await self.inner.put_many(ns, self._sealed_items(ns, items))

    async def patch(self, ns: str, key: str, fields: JSON) -> JSON | None:
        return (await self.patch_many(ns, {key: fields})).get(key)

    async def patch_many(self, ns: str, items: Mapping[str, JSON]) -> dict[str, JSON]:
        if ns != self.secrets.accounts:
            merged = await self.inner.patch_many(ns, {key: self._seal_fields(ns, key, fields)
                                                       for key, fields in items.items()})
            return {key: self._open_fields(ns, key, record) for key, record in merged.items()}
        changes: dict[str, JSON] = {}
        for token, fields in items.items():
            index = self._index(token)
            self._remember(token, index)
            changes[index] = self._seal_account(index, token, fields) if fields.get("token") else fields
        merged = await self.inner.patch_many(ns, changes)
        out = {}
        for index, record in merged.items():
            opened = self._open_account(index, record)
            if opened is not None:
                out[opened] = record
        return out

    async def delete(self, ns: str, key: str) -> bool:
        return await self.delete_many(ns, [key]) == 1

    async def delete_many(self, ns: str, keys: Sequence[str]) -> int:
        if ns == self.secrets.accounts:
            keys = [self._index(token) for token in keys]
        return await self.inner.delete_many(ns, keys)

    # counters ----------------------------------------------------------------
    def _counter_key(self, ns: str, key: str) -> str:
        return self._index(key) if ns in self.secrets.token_counters else key

    async def incr(
        self, ns: str, key: str, deltas: Mapping[str, int], *, limits: Mapping[str, int] | None = None
    ) -> dict[str, int] | None:
        return await self.inner.incr(ns, self._counter_key(ns, key), deltas, limits=limits)

    async def incr_many(self, ns: str, items: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
        if ns not in self.secrets.token_counters:
            return await self.inner.incr_many(ns, items)
        by_index = {self._index(token): token for token in items}
        stored = await self.inner.incr_many(ns, {index: items[token] for index, token in by_index.items()})
        return {by_index[index]: counts for index, counts in stored.items()}

    async def counters(self, ns: str, key: str) -> dict[str, int]:
        return await self.inner.counters(ns, self._counter_key(ns, key))

    async def counters_many(self, ns: str) -> dict[str, dict[str, int]]:
        found = await self.inner.counters_many(ns)
        if ns not in self.secrets.token_counters:
            return found
        return {self._token(index): counts for index, counts in found.items()}

    async def drop_counters(self, ns: str) -> None:
        await self.inner.drop_counters(ns)

    async def delete_counters(self, ns: str, keys: Sequence[str]) -> None:
        await self.inner.delete_counters(ns, [self._counter_key(ns, key) for key in keys])

    async def counter_namespaces(self, prefix: str = "") -> builtins.list[str]:
        return await self.inner.counter_namespaces(prefix)

    # locks and logs ----------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        return await self.inner.acquire_lock(name, owner, ttl)

    async def release_lock(self, name: str, owner: str) -> bool:
        return await self.inner.release_lock(name, owner)

    async def append_logs(self, stream: str, entries: Sequence[JSON], *, max_len: int = 10_000) -> None:
        await self.inner.append_logs(stream, entries, max_len=max_len)

    async def log_streams(self) -> builtins.list[str]:
        return await self.inner.log_streams()

    async def read_log(
        self, stream: str, *, limit: int = 100, before_seq: int | None = None
    ) -> builtins.list[LogEntry]:
        return await self.inner.read_log(stream, limit=limit, before_seq=before_seq)

    # change feed -------------------------------------------------------------
    async def last_change(self) -> int:
        return await self.inner.last_change()

    async def compact(self) -> None:
        await self.inner.compact()

    async def changes_since(self, seq: int, *, limit: int = 1000) -> builtins.list[Change]:
        return await self._readable(await self.inner.changes_since(seq, limit=limit))

    async def wait_for_changes(self, seq: int, timeout: float) -> builtins.list[Change]:
        return await self._readable(await self.inner.wait_for_changes(seq, timeout))

    async def _readable(self, changes: builtins.list[Change]) -> builtins.list[Change]:
        """Account changes by token: accounts another worker wrote and this one has not seen
        are read (one read per batch) to learn theirs. Own changes not made through this
        storage (a key rotation's) keep the index: their writer already knows them."""
        accounts = self.secrets.accounts
        unknown = sorted({c.key for c in changes if c.ns == accounts and c.key not in self._token_of
                          and c.key.startswith(INDEX_PREFIX) and c.origin != self.origin})
        if unknown:
            for index, record in (await self.inner.get_many(accounts, unknown)).items():
                self._open_account(index, record)
        return [dataclasses.replace(c, key=self._token(c.key)) if c.ns == accounts else c for c in changes]


# moving between keys -----------------------------------------------------------------------
async def _reseal(inner: Storage, secrets: Secrets, old: CredentialKey | None, new: CredentialKey) -> tuple[int, int]:
    """Seal with ``new`` every credential that is plain or sealed with ``old``; returns
    (accounts, other values) moved. Safe to run again after a crash at any point."""
    records = await inner.list(secrets.accounts)
    moves: dict[str, tuple[str, str]] = {}  # stored key -> (token, new index)
    for key, record in records.items():
        value = record.get("token", key)
        kid = sealed_kid(value)
        if kid == new.kid:
            continue
        if kid is None:  # plain text: the storage key is the token
            token = key
        elif old is not None and kid == old.kid:
            token = old.unseal(str(value), key)
        else:
            raise CredentialKeyError(f"an account is sealed with key id {kid}, neither {new.kid} nor "
                                     f"{old.kid if old else 'plain text'}: it cannot be opened")
        moves[key] = (token, new.index(token))
    counts = {ns: await inner.counters_many(ns) for ns in secrets.token_counters}
    keys = sorted(moves)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        await inner.put_many(secrets.accounts, {
            index: {**records[key], "token": new.seal(token, index)} for key in chunk
            for token, index in (moves[key],)})
        for ns, stored in counts.items():
            moved = [key for key in chunk if key in stored]
            deltas = {}
            for key in moved:
                index = moves[key][1]
                delta = {f: n - stored.get(index, {}).get(f, 0) for f, n in stored[key].items()}
                if any(delta.values()):
                    deltas[index] = delta
            if deltas:
                await inner.incr_many(ns, deltas)
            if moved:
                await inner.delete_counters(ns, moved)
        await inner.delete_many(secrets.accounts, chunk)
    values = 0
    for (ns, key), names in secrets.fields.items():
        stored = await inner.get(ns, key) or {}
        changed: JSON = {}
        for name in names:
            value = stored.get(name)
            kid = sealed_kid(value)
            if not isinstance(value, str) or not value or kid == new.kid:
                continue
            where = f"{ns}/{key}/{name}"
            plain = value if kid is None else (old or new).unseal(value, where)
            changed[name] = new.seal(plain, where)
        if changed:
            await inner.patch(ns, key, changed)
            values += len(changed)
    return len(moves), values


async def _state(inner: Storage) -> JSON:
    return await inner.get(NS_STORAGE, CREDENTIALS_KEY) or {}


async def _set_state(inner: Storage, kid: str | None, next_kid: str | None) -> None:
    await inner.put(NS_STORAGE, CREDENTIALS_KEY, {"kid": kid, "next": next_kid, "at_ms": now_ms()})


def _next_key(data_dir: Path) -> CredentialKey | None:
    path = data_dir / NEW_KEY_FILE
    return read_key_file(path) if path.exists() else None


def _install(key: CredentialKey, new: CredentialKey, data_dir: Path) -> str:
    """Make ``new`` the configured key where ``key`` came from; returns what the operator must know."""
    if key.source == KEY_ENV:
        return (f"set {KEY_ENV} on every worker to the key in {data_dir / NEW_KEY_FILE} (key id {new.kid}), "
                "then delete that file")
    os.replace(data_dir / NEW_KEY_FILE, data_dir / KEY_FILE)
    return f"{data_dir / KEY_FILE} now holds the new key (key id {new.kid})"


async def prepare(inner: Storage, data_dir: Path, secrets: Secrets) -> Storage:
    """The storage the gateway uses: sealed when a key is configured, after sealing a plain
    database or finishing an interrupted rotation. Raises :class:`CredentialKeyError`
    when the key does not fit the database."""
    key = load_key(data_dir)
    state = await _state(inner)
    kid, next_kid = state.get("kid"), state.get("next")
    if key is None:
        if kid or next_kid:
            raise CredentialKeyError(f"the credentials in this database are encrypted (key id {kid or next_kid}): "
                                     f"set {KEY_ENV} or put the key in {data_dir / KEY_FILE}")
        logger.info("storage: SSO tokens and cf_clearance are stored in plain text; set {} or create {} "
                    "to encrypt them (docs/security.md)", KEY_ENV, data_dir / KEY_FILE)
        return inner
    if kid == key.kid and not next_kid:
        return SealedStorage(inner, key, secrets)
    async with held(inner):
        state = await _state(inner)
        kid, next_kid = state.get("kid"), state.get("next")
        upcoming = _next_key(data_dir)
        if kid and next_kid and kid == key.kid and upcoming is not None and upcoming.kid == next_kid:
            moved, values = await _reseal(inner, secrets, key, upcoming)  # a rotation cut short
            await _set_state(inner, upcoming.kid, None)
            logger.warning("storage: finished an interrupted key rotation ({} account(s), {} value(s)); {}",
                           moved, values, _install(key, upcoming, data_dir))
            return SealedStorage(inner, upcoming, secrets)
        if kid and not next_kid and kid != key.kid and upcoming is not None and upcoming.kid == kid \
                and key.source != KEY_ENV:
            logger.warning("storage: {}", _install(key, upcoming, data_dir))  # rotated, file not yet replaced
            return SealedStorage(inner, upcoming, secrets)
        if kid and next_kid:
            raise CredentialKeyError(f"a key rotation from key id {kid} to {next_kid} was interrupted: run "
                                     f"`grok2api storage rotate-key` again with the key {kid} configured and "
                                     f"{data_dir / NEW_KEY_FILE} in place")
        if kid and kid != key.kid:
            hint = f" ({data_dir / NEW_KEY_FILE} holds it)" if upcoming is not None and upcoming.kid == kid else ""
            raise CredentialKeyError(f"the credentials in this database are encrypted with key id {kid}, but the "
                                     f"key in {key.source} has id {key.kid}: configure the key they were "
                                     f"encrypted with{hint}")
        if next_kid and next_kid != key.kid:
            raise CredentialKeyError(f"encrypting this database with key id {next_kid} was interrupted, but the "
                                     f"key in {key.source} has id {key.kid}: configure key {next_kid}")
        if kid != key.kid:  # plain text, or its sealing was cut short: seal it now
            await _set_state(inner, None, key.kid)
            moved, values = await _reseal(inner, secrets, None, key)
            await _set_state(inner, key.kid, None)
            await inner.compact()
            logger.warning("storage: {} account(s) and {} config value(s) encrypted with key id {} from {}",
                           moved, values, key.kid, key.source)
    return SealedStorage(inner, key, secrets)


async def rotate(storage: SealedStorage, data_dir: Path, new_key_file: Path | None = None) -> str:
    """Re-seal everything with a new key (generated, or read from ``new_key_file``); the old
    one opens nothing afterwards. Returns what the operator must do next."""
    inner, key = storage.inner, storage.key
    path = data_dir / NEW_KEY_FILE
    upcoming = _next_key(data_dir)
    if upcoming is not None and upcoming.kid == key.kid:  # never deleted here: it may be the only copy
        raise CredentialKeyError(f"{path} holds the key in use (key id {key.kid}): configure it where the gateway "
                                 "reads its key, delete that file, then rotate again")
    if new_key_file is not None and new_key_file.resolve() != path.resolve():
        read_key_file(new_key_file)  # refused unless only its owner can read it
        secret = parse_key(new_key_file.read_text(encoding="ascii"), str(new_key_file))
        if upcoming is not None and upcoming.kid != CredentialKey(secret, "").kid:
            raise CredentialKeyError(f"{path} already holds another next key (key id {upcoming.kid}); "
                                     "delete it or pass it as --new-key-file")
        if upcoming is None:
            upcoming = write_key_file(path, secret)
    if upcoming is None:
        upcoming = write_key_file(path, new_secret())
    if upcoming.kid == key.kid:
        raise CredentialKeyError("the new key is the key in use")
    async with held(inner):
        state = await _state(inner)
        if state.get("kid") != key.kid or state.get("next") not in (None, upcoming.kid):
            raise StorageError(f"the database's key state changed meanwhile ({state.get('kid')} -> "
                               f"{state.get('next')}); start the gateway once, then rotate")
        await _set_state(inner, key.kid, upcoming.kid)
        storage.also_open(upcoming)
        moved, values = await _reseal(inner, storage.secrets, key, upcoming)
        await _set_state(inner, upcoming.kid, None)
        storage.rekey(upcoming)
        await inner.compact()
    logger.info("storage: {} account(s) and {} value(s) re-encrypted with key id {}", moved, values, upcoming.kid)
    return (f"{moved} account(s) and {values} config value(s) re-encrypted from key id {key.kid} to "
            f"{upcoming.kid}; {_install(key, upcoming, data_dir)}")
