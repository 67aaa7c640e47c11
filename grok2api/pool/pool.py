"""``TokenPool``: the accounts of one process, kept in step with storage, handed out per request.

Every change to an account goes through :meth:`TokenPool._apply`: its changed fields
are queued for the debounced writer, it is re-indexed for selection, and its next quota
check is planned. Changes other workers make arrive through :meth:`apply_change`,
which re-reads that one account and keeps the fields this process changed and has not
written yet.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from grok2api.config.settings import Settings
from grok2api.logs.logger import logger, mask_secret
from grok2api.plugin.registries import ModelSpec
from grok2api.pool import machine
from grok2api.pool.account import NS_COUNTS, QUOTA_FIELDS, UNKNOWN, Account, Bucket, Status, normalize_token, now_ms
from grok2api.pool.claims import QuotaClaims
from grok2api.pool.errors import AccountNotFound, InvalidAccountField, NoAccountAvailable
from grok2api.pool.lease import E, Lease, LeasedStream, close_quietly
from grok2api.pool.persistence import EVENTS_KEY, AccountWriter, chunked, read_records
from grok2api.pool.refresh import PLAN_FIELDS, PROGRESS_KEY, Refresher, RefreshProgress
from grok2api.pool.selection import Selector
from grok2api.storage import JSON, NS_ACCOUNTS, NS_META, Change, Storage
from grok2api.upstream import GrokClient
from grok2api.upstream.errors import Failure, UpstreamError

T = TypeVar("T")
_OPERATOR_STATUSES = ("active", "disabled")
_BUCKET_OF_FIELD = {name: bucket for bucket, name in QUOTA_FIELDS.items()}


class TokenPool:
    def __init__(self, storage: Storage, client: GrokClient, settings: Settings) -> None:
        self._storage = storage
        self._settings = settings
        self._selector = Selector(settings)
        self._writer = AccountWriter(storage, settings, self._selector.get)
        self._claims = QuotaClaims(storage)
        self._refresher = Refresher(storage, client, settings, lookup=self._selector.get,
                                    apply=self._apply, merge=self._merge, flush=self._writer.flush,
                                    claims=self._claims)

    # lifecycle ---------------------------------------------------------------
    async def start(self, *, background: bool = True) -> None:
        """Load every account; with ``background``, run the quota refresher too, which plans
        their syncs in its own task: serving needs none of the plans."""
        accounts = await self._load()
        logger.info("pool: {} account(s) loaded", len(self._selector))
        if background:
            self._refresher.start(accounts)

    async def stop(self) -> None:
        """Stop background work and write everything not yet written."""
        await self._refresher.stop()
        await self._writer.flush()

    async def _load(self) -> list[Account]:
        """Take every stored account: as :meth:`_merge` of each, with one index pass for them
        all, but not yet planned for the refresher."""
        with _collector_paused():
            records = await self._storage.list(NS_ACCOUNTS)
            counts = await self._storage.counters_many(NS_COUNTS)
            for token in [t for t in self._selector.accounts if t not in records]:
                self._merge(token, None)
            accounts = [self._take(token, record, counts.get(token, {})) for token, record in records.items()]
            self._selector.put_many(accounts, now_ms())
        return accounts

    async def apply_change(self, change: Change) -> None:
        """Another worker wrote an account: take the stored state of that one. What this
        worker wrote itself went through this pool, which holds it already.

        A ``reset`` change (the feed was trimmed past this reader) reloads every account.
        """
        if change.op == "reset":
            await self._refresher.plan(await self._load())
        elif change.ns == NS_ACCOUNTS and change.op in ("put", "delete") and change.origin != self._storage.origin:
            record = await self._storage.get(NS_ACCOUNTS, change.key)
            counts = await self._storage.counters(NS_COUNTS, change.key) if record is not None else None
            self._merge(change.key, record, counts)

    def _merge(self, token: str, record: JSON | None, counts: dict[str, int] | None = None) -> None:
        """Take the stored record (None: deleted) and, when given, the stored shared counters."""
        if record is None:
            if self._selector.get(token) is not None:
                self._selector.remove(token)
                self._writer.forget(token)
                self._claims.forget(token)
            return
        account = self._take(token, record, counts)
        self._selector.put(account, now_ms())
        self._refresher.schedule(account)

    def _take(self, token: str, record: JSON, counts: dict[str, int] | None) -> Account:
        """The account with the stored values of ``record``, not yet re-indexed: a new one, or
        the known one keeping the fields this process changed and has not written yet."""
        account = self._selector.get(token)
        if account is None:
            account = Account.from_record(token, record)
        else:
            keep = self._writer.pending(token)
            if record.get("status") == Status.DISABLED:
                keep.discard("status")  # an operator's word: no outcome seen here overrides it
            account.assign(record, keep=keep)
        if counts is not None:
            account.set_stored_counts(counts)
        return account

    def _apply(self, account: Account, changed: set[str]) -> None:
        if self._selector.get(account.token) is not account:
            return  # removed while a request or a sync held it
        if changed or account.unsaved:
            self._writer.mark(account.token, changed)
        self._selector.put(account, now_ms())
        if not changed.isdisjoint(PLAN_FIELDS):  # most requests change only what the plan ignores
            self._refresher.schedule(account)

    # requests ----------------------------------------------------------------
    async def acquire(self, model: ModelSpec, *, exclude: Collection[str] = ()) -> Lease:
        """Claim the preferred account for ``model`` and charge the model's cost to its quota.

        Nothing here awaits, so two requests can never both take an account's last unit.
        Raises :class:`NoAccountAvailable` (with ``retry_after``) while accounts are cooling
        down or busy, and (without) when none is configured or all are expired or disabled.
        """
        now = now_ms()
        for due in self._selector.due(model, now):
            self._apply(due, machine.wake(due, now))
        account = self._selector.pick(model, now, exclude)
        if account is None:
            self._writer.count("no_account")
            raise self._selector.unavailable(model, now, exclude)
        bucket = Bucket.of(model)
        charged = account.take(bucket, model.cost)
        account.inflight += 1
        account.last_used_at = now
        self._apply(account, {"last_used_at", QUOTA_FIELDS[bucket]} if charged else {"last_used_at"})
        return Lease(account, model, bucket, charged, self._settle)

    def _settle(self, lease: Lease, outcome: UpstreamError | None, judged: bool) -> None:
        account, now = lease.account, now_ms()
        account.inflight -= 1
        changed: set[str] = set()
        if judged and outcome is None:
            changed = machine.on_success(account, now)
            if self._settings.token.sync_after_use:
                self._refresher.sync_soon(account, lease.bucket, lease.model.rate_limit_model)
        elif judged and outcome is not None:
            changed = machine.on_failure(account, lease.bucket, outcome, now, self._settings.token)
            remaining = account.remaining(lease.bucket)
            if lease.charged and outcome.failure is not Failure.RATE_LIMITED and remaining != UNKNOWN:
                changed.add(account.set_remaining(lease.bucket, remaining + lease.charged))  # not served
            self._writer.count(outcome.failure.value)
        self._apply(account, changed)

    async def call(self, model: ModelSpec, fn: Callable[[Lease], Awaitable[T]]) -> T:
        """Run ``fn`` on an account; on a retryable failure, again on another (``grok.max_retry`` times)."""

        async def attempt(lease: Lease) -> T:
            try:
                result = await fn(lease)
            except BaseException as error:
                await lease.fail(error)
                raise
            await lease.release()
            return result

        return await self._rotate(model, attempt)

    async def stream(self, model: ModelSpec, open_stream: Callable[[Lease], AsyncIterator[E]]) -> LeasedStream[E]:
        """Open a stream on an account and read its first event, rotating on a retryable failure.

        ``open_stream(lease)`` returns an async iterator of events. Once the first event
        is in hand the request is committed to that account: the returned stream yields
        it and the rest, and is never retried.
        """

        async def attempt(lease: Lease) -> LeasedStream[E]:
            rest = None
            try:
                rest = open_stream(lease)
                try:
                    first = await anext(rest)
                except StopAsyncIteration:
                    raise UpstreamError(Failure.PROTOCOL, "the upstream stream ended before its first event") from None
            except BaseException as error:
                await close_quietly(rest)
                await lease.fail(error)
                raise
            return LeasedStream(lease, first, rest)

        return await self._rotate(model, attempt)

    async def _rotate(self, model: ModelSpec, attempt: Callable[[Lease], Awaitable[T]]) -> T:
        tried: list[str] = []
        last: UpstreamError | None = None
        while True:
            try:
                lease = await self.acquire(model, exclude=tried)
            except NoAccountAvailable:
                if last is None:
                    raise
                raise last from None  # no other account: the client learns what the last one said
            if not await self._claim(lease):
                tried.append(lease.token)
                continue
            try:
                return await attempt(lease)
            except UpstreamError as error:
                tried.append(lease.token)
                if len(tried) > self._settings.grok.max_retry or not machine.retryable(error, self._settings.grok):
                    raise
                last = error
                self._writer.count("rotation")
                logger.info("pool: {} on account {}; trying another account", error.failure.value,
                            mask_secret(lease.token))

    async def _claim(self, lease: Lease) -> bool:
        """Claim the lease's units across workers. Refused, the bucket is empty for this process:
        its estimate drops to 0 here (no penalty, nothing stored; a sync opens the next epoch)
        and the request moves on. Storage failing, Grok's own 429 is the guard, as before."""
        try:
            if await self._claims.claim(lease.account, lease.bucket, lease.charged):
                return True
        except Exception as exc:
            logger.warning("pool: claiming quota failed ({}); serving unguarded", exc)
            return True
        except BaseException:  # cancelled: the request is gone, the account must not stay held
            await lease.abandon()
            raise
        # the charge acquire() marked for writing must not store this process's zero either
        self._writer.unmark(lease.token, {lease.account.set_remaining(lease.bucket, 0)})
        await lease.abandon()  # re-indexes the account with its empty estimate
        return False

    # operators ---------------------------------------------------------------
    def get(self, token: str) -> Account | None:
        return self._selector.get(normalize_token(token))

    @property
    def changes(self) -> int:
        """Grows whenever an account is added, changed (here or read from storage) or removed:
        a figure computed over :meth:`accounts` is current while this has not moved."""
        return self._selector.changes

    def accounts(self, *, pool: str | None = None, status: str | None = None) -> list[Account]:
        wanted = Status.parse(status) if status else None
        return [a for a in self._selector.accounts.values()
                if (pool is None or a.pool == pool) and (wanted is None or a.status is wanted)]

    async def add(self, tokens: Iterable[str | Mapping[str, Any]], pool: str | None = None) -> tuple[int, int]:
        """Add accounts from bare tokens (``sso=`` prefixes and cookie strings accepted) or
        records in the original's shape; returns ``(added, merged)``.

        A token already known is merged, never doubled: ``pool`` (when given) moves it,
        a note fills an empty one, tags are united; its state is kept. New accounts go to
        ``pool``, else the record's pool, else ``ssoBasic``. Unusable entries are skipped.
        """
        items: dict[str, list[Mapping[str, Any]]] = {}
        for item in tokens:
            record = {"token": item} if isinstance(item, str) else item
            token = normalize_token(str(record.get("token") or ""))
            if token:
                items.setdefault(token, []).append(record)
        stored = await read_records(self._storage, list(items))
        for token, record in stored.items():
            self._merge(token, record)  # known elsewhere already: merge into that
        now, new, merged = now_ms(), [], 0
        for token, records in items.items():
            account = self._selector.get(token)
            if account is None:  # the first record makes it; later duplicates merge into it
                account = Account.from_record(token, records[0])
                account.pool = pool or account.pool
                account.created_at = account.created_at or now
                new.append(account)
                records = records[1:]
            changed: set[str] = set()
            for record in records:
                changed |= _merge_operator_fields(account, record, pool)
            merged += len(records)
            if changed and account.indexed is not None:  # already stored: write the merge
                self._apply(account, changed)
        await self._writer.insert(new)
        for account in new:
            self._selector.put(account, now)
            self._refresher.schedule(account)
        await self._writer.flush()
        logger.info("pool: {} account(s) added, {} merged", len(new), merged)
        return len(new), merged

    async def remove(self, tokens: Iterable[str]) -> int:
        """Delete accounts; returns how many existed. Requests holding one finish normally."""
        keys = list(dict.fromkeys(t for t in map(normalize_token, tokens) if t))
        removed = 0
        for chunk in chunked(keys):
            removed += await self._storage.delete_many(NS_ACCOUNTS, chunk)
        for token in keys:
            self._merge(token, None)
        await self._zero_counts(keys)
        return removed

    async def _zero_counts(self, tokens: list[str]) -> None:
        """Take removed accounts' shared counts back to 0 (storage deletes no single counter
        key): added again, an account starts from its record alone."""
        stored = await self._storage.counters_many(NS_COUNTS) if tokens else {}
        for token in tokens:
            counts = {field: -n for field, n in stored.get(token, {}).items() if n}
            if counts:
                await self._storage.incr(NS_COUNTS, token, counts)

    async def update(self, token: str, **fields: Any) -> Account:
        """An operator's edit: ``status`` (``active`` or ``disabled``), ``note``, ``tags``,
        ``pool``, ``quota``, ``heavy_quota``, ``last_asset_clear_at``. Validated whole before anything changes;
        written before returning."""
        account = self.get(token)
        if account is None:
            raise AccountNotFound(token)
        values = {name: _operator_value(name, value) for name, value in fields.items()}
        changed: set[str] = set()
        for name, value in values.items():
            if name == "status":
                changed |= machine.set_by_operator(account, value)
            else:
                setattr(account, name, value)
                changed.add(name)
                if name in _BUCKET_OF_FIELD:  # not known from a sync: no claims on it
                    changed.add(account.set_epoch(_BUCKET_OF_FIELD[name], None))
        self._apply(account, changed)
        await self._writer.flush()
        return account

    async def refresh(self, tokens: Iterable[str] | None = None) -> RefreshProgress:
        """Sync the quota of these accounts (None: every usable one) in the background;
        ``await progress.wait()`` for the end."""
        if tokens is None:
            accounts = [a for a in self._selector.accounts.values() if a.usable]
        else:
            found = (self.get(t) for t in tokens)
            accounts = list({a.token: a for a in found if a is not None}.values())
        return self._refresher.refresh(accounts)

    async def refresh_progress(self) -> JSON | None:
        """The latest refresh run of any worker: done, failed, remaining, state."""
        return await self._storage.get(NS_META, PROGRESS_KEY)

    async def flush(self) -> None:
        """Write every pending change now."""
        await self._writer.flush()

    async def stats(self) -> JSON:
        """Counts for the admin console; ``events`` are shared by every worker."""
        accounts = self._selector.accounts.values()
        statuses = Counter(a.status.value for a in accounts)
        pools = Counter(a.pool for a in accounts)
        active = [a for a in accounts if a.status is Status.ACTIVE]
        return {
            "total": len(self._selector),
            "by_status": {s.value: statuses.get(s.value, 0) for s in Status},
            "by_pool": dict(pools),
            "inflight": sum(a.inflight for a in accounts),
            "quota": _quota_sum(active, Bucket.NORMAL),
            "heavy_quota": _quota_sum(active, Bucket.HEAVY),
            "use_count": sum(a.use_count for a in accounts),
            "unsaved": self._writer.unsaved,
            "events": await self._storage.counters(NS_META, EVENTS_KEY),
        }


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A load makes a million objects and frees none of them: the cyclic garbage collector,
    which the allocations set off, would walk the growing heap again and again (a quarter
    of the time of a load of 100,000 accounts)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _quota_sum(accounts: list[Account], bucket: Bucket) -> JSON:
    known = [a.remaining(bucket) for a in accounts if a.remaining(bucket) != UNKNOWN]
    return {"known": sum(known), "accounts_known": len(known), "accounts_unknown": len(accounts) - len(known)}


def _merge_operator_fields(account: Account, record: Mapping[str, Any], pool: str | None) -> set[str]:
    changed = set()
    if pool and account.pool != pool:
        account.pool = pool
        changed.add("pool")
    note = str(record.get("note") or "")
    if note and not account.note:
        account.note = note
        changed.add("note")
    tags = record.get("tags")
    if isinstance(tags, list | tuple):
        united = tuple(dict.fromkeys([*account.tags, *map(str, tags)]))
        if united != account.tags:
            account.tags = united
            changed.add("tags")
    return changed


def _operator_value(name: str, value: Any) -> Any:
    if name == "status":
        if str(value).strip().lower() not in _OPERATOR_STATUSES:
            raise InvalidAccountField("status: an operator sets 'active' or 'disabled'", "status")
        return Status.parse(value)
    if name == "note":
        return str(value or "")
    if name == "tags":
        if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
            raise InvalidAccountField("tags: expected a list of strings", "tags")
        return tuple(dict.fromkeys(value))
    if name == "pool":
        if not isinstance(value, str) or not value.strip():
            raise InvalidAccountField("pool: expected a pool name such as ssoBasic or ssoSuper", "pool")
        return value.strip()
    if name in ("quota", "heavy_quota"):
        if isinstance(value, bool) or not isinstance(value, int) or value < UNKNOWN:
            raise InvalidAccountField(f"{name}: expected an integer, -1 for unknown", name)
        return value
    if name == "last_asset_clear_at":  # set when the admin cleared the account's online assets
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidAccountField(f"{name}: expected a time in milliseconds", name)
        return value
    raise InvalidAccountField(f"{name}: not a field an operator can change", name)
