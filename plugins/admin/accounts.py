"""``/api/v1/admin/tokens…``: the pool's accounts, listed masked, edited one field at a time.

The list keeps the original's item shape (``token`` masked now) plus ``id``, the handle
every other route takes instead of the token. Classification follows the original's
console: *invalid* is expired or disabled, *exhausted* is cooling or a known quota at 0
(the heavy one counting for super accounts), *active* is neither; a status filter is the
union of the states it names.

The pool's version is a digest of what an operator edits (tokens, pools, notes, tags,
disabled or not), never of quotas traffic moves: the original's full replacement is
applied as a diff, refused with 409 when the version it read is no longer current, and
without a version it never deletes.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from grok2api.api import (
    JSON,
    POOL,
    POOL_BASIC,
    POOL_SUPER,
    STORAGE,
    Account,
    ApiError,
    TokenPool,
    account_id,
    invalid,
    mask_secret,
    parse_tokens,
    random_hex,
    read_json,
    tokens_json,
    tokens_text,
)
from grok2api_plugins.admin.respond import query_int, query_list, reply

TYPES = {"sso": POOL_BASIC, "supersso": POOL_SUPER}
STATES = ("active", "invalid", "exhausted")
SORTS: dict[str, Callable[[Account], Any]] = {
    "created_at": lambda a: a.created_at,
    "last_used_at": lambda a: a.last_used_at or 0,
    "use_count": lambda a: a.use_count,
    "fail_count": lambda a: a.fail_count,
    "quota": lambda a: a.quota,
    "heavy_quota": lambda a: a.heavy_quota,
    "note": lambda a: a.note.lower(),
    "status": lambda a: a.status.value,
}
MAX_PAGE_SIZE = 1000
#: most accounts one refresh request syncs and waits for (the console sends chunks of 50)
MAX_REFRESH = 100
REPLACE_LOCK = "admin:tokens:replace"
_PAGING = ("page", "page_size")


def is_invalid(account: Account) -> bool:
    return account.status in ("expired", "disabled")  # a StrEnum: its values compare as strings


def is_exhausted(account: Account) -> bool:
    heavy_out = account.heavy_quota == 0 and account.pool == POOL_SUPER  # -1 is unknown, not empty
    return account.status == "cooling" or account.quota == 0 or heavy_out


def states(account: Account) -> list[str]:
    found = [name for name, test in (("invalid", is_invalid), ("exhausted", is_exhausted)) if test(account)]
    return found or ["active"]


def item(account: Account) -> JSON:
    """The original's admin item (token masked) plus the additive fields."""
    status = account.status.value
    return {
        "token": mask_secret(account.token),
        "status": "invalid" if status == "expired" else status,
        "quota": max(account.quota, 0),
        "quota_known": account.quota >= 0,
        "heavy_quota": account.heavy_quota,
        "heavy_quota_known": account.heavy_quota >= 0,
        "token_type": POOL_SUPER if account.pool == POOL_SUPER else "sso",
        "note": account.note,
        "fail_count": account.fail_count,
        "use_count": account.use_count,
        "id": account_id(account.token),
        "pool": account.pool,
        "tags": list(account.tags),
        "states": states(account),
        "created_at": account.created_at,
        "last_used_at": account.last_used_at,
        "last_sync_at": account.last_sync_at,
        "last_fail_reason": account.last_fail_reason,
        "last_asset_clear_at": account.last_asset_clear_at,
    }


#: each account's digest by token, with the fields it was made of: a list or a count of
#: 100,000 accounts hashes only what changed since the last one
_DIGESTS: dict[str, tuple[tuple[str, str, tuple[str, ...], bool], int]] = {}


def version(accounts: Iterable[Account]) -> str:
    """Order-free (a sum of per-account digests, no sort) and the same in every worker."""
    total = seen = 0
    for account in accounts:
        fields = (account.pool, account.note, account.tags, account.status == "disabled")
        held = _DIGESTS.get(account.token)
        if held is None or held[0] != fields:
            line = "\x1f".join((account.token, account.pool, account.note, "\x1e".join(account.tags),
                                "d" if fields[3] else ""))
            held = _DIGESTS[account.token] = (fields, int.from_bytes(hashlib.blake2b(line.encode(),
                                                                                       digest_size=16).digest()))
        total += held[1]
        seen += 1
    if len(_DIGESTS) > 2 * seen + 10_000:  # deleted accounts' digests: start afresh next time
        _DIGESTS.clear()
    return f"{total % (1 << 128):032x}"


@dataclass(frozen=True, slots=True)
class Query:
    """The filters of a list or an export, read from the query string (a bad one is a 400)."""

    types: tuple[str, ...]
    states: tuple[str, ...]
    search: str
    tags: tuple[str, ...]
    pool: str | None

    @classmethod
    def of(cls, request: web.Request) -> Query:
        types = tuple(query_list(request, "type"))
        wanted = tuple(query_list(request, "status"))
        for name, values, allowed in (("type", types, tuple(TYPES)), ("status", wanted, STATES)):
            bad = [v for v in values if v not in allowed]
            if bad:
                raise invalid(f"'{name}' accepts {', '.join(allowed)}; got {bad[0]!r}", name)
        return cls(types, wanted, request.query.get("search", "").strip().lower(), tuple(query_list(request, "tag")),
                   request.query.get("pool") or None)

    def found(self, accounts: list[Account]) -> list[Account]:
        """The accounts the search names, in one comprehension (the cut that rules out most of a
        big pool), then those that pass the other filters."""
        text = self.search
        if text:
            accounts = [a for a in accounts if text in a.token.lower() or text in a.note.lower()]
        return [a for a in accounts if self.matches(a)]

    def matches(self, account: Account) -> bool:
        """Every filter but the search (see :meth:`found`), cheapest first."""
        if self.types and not any(TYPES[t] == account.pool for t in self.types):
            return False
        if self.pool and account.pool != self.pool:
            return False
        if self.tags and not set(self.tags) <= set(account.tags):
            return False
        if not self.states:
            return True
        bad, empty = is_invalid(account), is_exhausted(account)
        return (bad and "invalid" in self.states) or (empty and "exhausted" in self.states) or (
            not (bad or empty) and "active" in self.states)


def counts(accounts: list[Account]) -> JSON:
    """The console's cards: totals per state (an account may be invalid and exhausted) and per type."""
    active = invalid_ = exhausted = supers = used = quota = 0
    for account in accounts:
        bad, empty = is_invalid(account), is_exhausted(account)
        invalid_ += bad
        exhausted += empty
        active += not (bad or empty)
        supers += account.pool == POOL_SUPER
        used += account.use_count
        if not bad and account.quota > 0:
            quota += account.quota
    return {"total": len(accounts), "active": active, "invalid": invalid_, "exhausted": exhausted,
            "sso": len(accounts) - supers, "supersso": supers, "chat_quota": quota, "use_count": used}


@dataclass(slots=True)
class _Figures:
    changes: int
    version: str
    counts: JSON


_FIGURES: weakref.WeakKeyDictionary[TokenPool, _Figures] = weakref.WeakKeyDictionary()


def figures(pool: TokenPool) -> tuple[str, JSON]:
    """The pool's version and counts, computed again only once an account changed
    (:attr:`TokenPool.changes`): a console polling 100,000 accounts costs a lookup."""
    held = _FIGURES.get(pool)
    if held is None or held.changes != pool.changes:
        changes, every = pool.changes, pool.accounts()
        held = _FIGURES[pool] = _Figures(changes, version(every), counts(every))
    return held.version, held.counts


def _pool(request: web.Request) -> TokenPool:
    return request.app[POOL]


def select_accounts(request: web.Request, accounts: list[Account] | None = None) -> list[Account]:
    accounts = _pool(request).accounts() if accounts is None else accounts
    selected = Query.of(request).found(accounts)
    sort = request.query.get("sort", "created_at")
    if sort not in SORTS:
        raise invalid(f"'sort' accepts {', '.join(SORTS)}; got {sort!r}", "sort")
    order = request.query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise invalid("'order' accepts asc or desc", "order")
    selected.sort(key=lambda a: (SORTS[sort](a), a.token), reverse=order == "desc")
    return selected


async def list_tokens(request: web.Request) -> web.Response:
    """Without ``page``/``page_size``: the original's ``{pool: [item]}``; with either: one page."""
    selected = select_accounts(request)
    pool_version, pool_counts = figures(_pool(request))
    if not any(name in request.query for name in _PAGING):
        grouped: dict[str, list[JSON]] = {}
        for account in selected:
            grouped.setdefault(account.pool, []).append(item(account))
        response = reply(request, grouped)
    else:
        size = query_int(request, "page_size", 50, 1, MAX_PAGE_SIZE)
        page = query_int(request, "page", 1, 1, 10**9)
        start = (page - 1) * size
        response = reply(request, {
            "items": [item(a) for a in selected[start:start + size]], "total": len(selected), "page": page,
            "page_size": size, "pages": max(1, -(-len(selected) // size)),
            "counts": pool_counts, "version": pool_version,
        })
    response.headers["ETag"] = f'"{pool_version}"'
    return response


async def token_counts(request: web.Request) -> web.Response:
    pool_version, pool_counts = figures(_pool(request))
    return reply(request, {**pool_counts, "version": pool_version})


def resolve_accounts(request: web.Request, body: JSON) -> tuple[list[Account], list[str]]:
    """The accounts ``body`` names by ``ids``/``id`` or ``tokens``/``token``, and the names not found."""
    ids = _strings(body, "ids", "id")
    tokens = _strings(body, "tokens", "token")
    if not ids and not tokens:
        raise invalid("name the accounts: 'ids' (from the list) or 'tokens'", "ids")
    pool = _pool(request)
    by_id = {account_id(a.token): a for a in pool.accounts()} if ids else {}
    found: dict[str, Account] = {}
    missing: list[str] = []
    for name, account in [*((i, by_id.get(i)) for i in ids), *((t, pool.get(t)) for t in tokens)]:
        if account is None:
            missing.append(name if name in ids else mask_secret(name))
        else:
            found[account.token] = account
    return list(found.values()), missing


def _strings(body: JSON, many: str, one: str) -> list[str]:
    values = body.get(many, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise invalid(f"'{many}' must be a list of strings", many)
    single = body.get(one)
    if single is not None and not isinstance(single, str):
        raise invalid(f"'{one}' must be a string", one)
    return list(dict.fromkeys([*([single] if single else []), *values]))


async def add_tokens(request: web.Request) -> web.Response:
    """``{tokens: [...], pool?, note?, tags?}``: bare tokens, ``sso=…`` or cookie strings."""
    body = await read_json(request)
    tokens = _strings(body, "tokens", "token")
    if not tokens:
        raise invalid("'tokens' must name at least one token", "tokens")
    pool = _pool_name(body.get("pool"))
    extra: JSON = {}
    if body.get("note"):
        extra["note"] = str(body["note"])[:200]
    if "tags" in body:
        extra["tags"] = _tags(body["tags"])
    return await _report(request, [{"token": t, **extra} for t in tokens], pool)


async def import_tokens(request: web.Request) -> web.Response:
    """The body is a text file (one token per line, ``sso=`` or not), the original's
    ``token.json`` or our JSON export; ``?pool=`` puts every new account in that pool."""
    text = await request.text()
    try:
        items = parse_tokens(text, "the upload")
    except ValueError as exc:
        raise invalid(str(exc), "body") from None
    if not items:
        raise invalid("the upload holds no tokens", "body")
    return await _report(request, items, _pool_name(request.query.get("pool")))


async def _report(request: web.Request, items: list[str | JSON], pool: str | None) -> web.Response:
    added, merged = await _pool(request).add(items, pool=pool)
    return reply(request, {"status": "success", "added": added, "merged": merged,
                           "skipped": len(items) - added - merged, "version": figures(_pool(request))[0]})


def _pool_name(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise invalid("'pool' must be a pool name such as ssoBasic or ssoSuper", "pool")
    return value.strip()


def _tags(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise invalid("'tags' must be a list of strings", "tags")
    return [t.strip()[:64] for t in value if t.strip()]


async def export_tokens(request: web.Request) -> web.StreamResponse:
    """The full tokens, as text (one per line) or JSON (the original's ``token.json`` shape)."""
    return _export(select_accounts(request), request.query.get("format", "txt"))


async def export_selected(request: web.Request) -> web.StreamResponse:
    """``{ids or tokens, format?}``: the export of the accounts a console selected (too many for a URL)."""
    body = await read_json(request)
    accounts, _missing = resolve_accounts(request, body)
    return _export(accounts, body.get("format", "txt"))


def _export(selected: list[Account], fmt: object) -> web.StreamResponse:
    if fmt not in ("txt", "json"):
        raise invalid("'format' accepts txt or json", "format")
    body = tokens_json(selected) if fmt == "json" else tokens_text(selected).encode()
    return web.Response(body=body, content_type="application/json" if fmt == "json" else "text/plain",
                        headers={"Content-Disposition": f'attachment; filename="tokens.{fmt}"',
                                 "Cache-Control": "no-store"})


_EDITABLE = ("note", "tags", "pool", "quota", "heavy_quota", "status")


async def update_token(request: web.Request) -> web.Response:
    """``{id or token, note?, tags?, pool?, quota?, heavy_quota?, status?: active|disabled}``."""
    body = await read_json(request)
    accounts, _missing = resolve_accounts(request, body)
    if len(accounts) != 1:
        raise ApiError(404, "No such account", code="token_not_found") if not accounts else \
            invalid("name one account", "id")
    fields = {name: body[name] for name in _EDITABLE if name in body}
    if "note" in fields and isinstance(fields["note"], str):
        fields["note"] = fields["note"][:200]
    account = await _pool(request).update(accounts[0].token, **fields)
    return reply(request, {"status": "success", "token": item(account)})


Change = Callable[[TokenPool, list[Account]], Awaitable[int]]


def _batch(change: Change) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        accounts, missing = resolve_accounts(request, await read_json(request))
        done = await change(_pool(request), accounts)
        return reply(request, {"status": "success", "count": done, "missing": missing})

    return handle


async def _set_status(pool: TokenPool, accounts: list[Account], status: str) -> int:
    for account in accounts:
        await pool.update(account.token, status=status)
    return len(accounts)


async def _enable(pool: TokenPool, accounts: list[Account]) -> int:
    return await _set_status(pool, accounts, "active")


async def _disable(pool: TokenPool, accounts: list[Account]) -> int:
    return await _set_status(pool, accounts, "disabled")


async def _delete(pool: TokenPool, accounts: list[Account]) -> int:
    return await pool.remove(a.token for a in accounts)


async def refresh_tokens(request: web.Request) -> web.Response:
    """The original's ``{token}`` / ``{tokens}`` → ``{status, results: {token: bool}}``, for a few accounts;
    ``ids`` (the list's handles) work too, and are the keys of their results."""
    body = await read_json(request)
    tokens = _strings(body, "tokens", "token")
    ids = _strings(body, "ids", "id")
    if not tokens and not ids:
        raise invalid("'token' or 'tokens' is required", "tokens")
    if len(tokens) + len(ids) > MAX_REFRESH:
        raise invalid(f"at most {MAX_REFRESH} tokens per refresh", "tokens")
    pool = _pool(request)
    by_id = {account_id(a.token): a for a in pool.accounts()} if ids else {}
    known = {t: a for t in tokens if (a := pool.get(t)) is not None}
    known |= {i: a for i in ids if (a := by_id.get(i)) is not None}
    before = {t: (a.last_sync_at, a.last_fail_at) for t, a in known.items()}
    await (await pool.refresh(list(dict.fromkeys(a.token for a in known.values())))).wait()
    # synced without a failure since: the run's own errors are keyed by masked tokens, which can collide
    results = {t: t in known and known[t].last_sync_at != before[t][0] and known[t].last_fail_at == before[t][1]
               for t in [*tokens, *ids]}
    return reply(request, {"status": "success", "results": results})


async def replace_tokens(request: web.Request) -> web.Response:
    """The original's full replacement ``{pool: [item or token]}``, applied as a diff.

    The version it read (``If-Match`` or a top-level ``version``) must still be current,
    else 409; without one, accounts it does not list are kept, not deleted. Statuses
    other than ``disabled``/``active`` (the original posts back ``invalid``) and quotas
    of known accounts are the pool's business and left alone.
    """
    body = await read_json(request)
    seen = request.headers.get("If-Match", "").strip().strip('"') or str(body.pop("version", "") or "")
    storage, owner = request.app[STORAGE], random_hex(8)
    if not await storage.acquire_lock(REPLACE_LOCK, owner, 30):
        raise ApiError(409, "Another replacement of the pool is running; read the pool again and retry",
                       code="pool_changed")
    try:
        return await _apply_replacement(request, body, seen)
    finally:
        await storage.release_lock(REPLACE_LOCK, owner)


async def _apply_replacement(request: web.Request, body: JSON, seen: str) -> web.Response:
    pool = _pool(request)
    current = pool.accounts()
    now = figures(pool)[0]
    if seen and seen != now:
        raise ApiError(409, "The pool changed since it was read; read it again and re-apply your edit",
                       code="pool_changed")
    by_id = {account_id(a.token): a for a in current}
    listed: set[str] = set()
    new: list[JSON] = []
    skipped = updated = 0
    for pool_name, entries in body.items():
        if not isinstance(entries, list):
            raise invalid(f"'{pool_name}' must be a list of tokens or items", pool_name)
        for entry in entries:
            record: JSON = {"token": entry} if isinstance(entry, str) else entry if isinstance(entry, dict) else {}
            account = by_id.get(str(record.get("id", ""))) or pool.get(str(record.get("token") or ""))
            if account is None:
                if "…" in str(record.get("token", "")) or not record.get("token"):
                    skipped += 1  # a masked token of an account gone since: nothing to add
                else:
                    new.append({**_new_fields(record), "pool": pool_name})
                continue
            listed.add(account.token)
            fields = _edits(account, record, pool_name)
            if fields:
                await pool.update(account.token, **fields)
                updated += 1
    added, merged = await pool.add(new) if new else (0, 0)
    unlisted = [a.token for a in current if a.token not in listed]
    removed = await pool.remove(unlisted) if seen and unlisted else 0
    return reply(request, {
        "status": "success", "message": "Token updated", "added": added, "merged": merged, "updated": updated,
        "removed": removed, "kept_unlisted": 0 if seen else len(unlisted),
        "skipped": skipped + len(new) - added - merged, "version": figures(pool)[0],
    })


def _new_fields(record: JSON) -> JSON:
    keep = ("token", "note", "tags", "quota", "heavy_quota")
    out = {k: record[k] for k in keep if k in record}
    if str(record.get("status", "")).lower() == "disabled":
        out["status"] = "disabled"
    return out


def _edits(account: Account, record: JSON, pool_name: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if pool_name != account.pool:
        fields["pool"] = pool_name
    if "note" in record and str(record["note"] or "") != account.note:
        fields["note"] = str(record["note"] or "")[:200]
    if isinstance(record.get("tags"), list) and tuple(record["tags"]) != account.tags:
        fields["tags"] = _tags(record["tags"])
    status = str(record.get("status", "")).lower()
    if status == "disabled" and account.status.value != "disabled":
        fields["status"] = "disabled"
    elif status == "active" and account.status.value == "disabled":
        fields["status"] = "active"
    return fields


def account_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/admin/tokens", list_tokens),
        web.post("/api/v1/admin/tokens", replace_tokens),
        web.get("/api/v1/admin/tokens/counts", token_counts),
        web.post("/api/v1/admin/tokens/add", add_tokens),
        web.post("/api/v1/admin/tokens/import", import_tokens),
        web.get("/api/v1/admin/tokens/export", export_tokens),
        web.post("/api/v1/admin/tokens/export", export_selected),
        web.post("/api/v1/admin/tokens/update", update_token),
        web.post("/api/v1/admin/tokens/enable", _batch(_enable)),
        web.post("/api/v1/admin/tokens/disable", _batch(_disable)),
        web.post("/api/v1/admin/tokens/delete", _batch(_delete)),
        web.post("/api/v1/admin/tokens/refresh", refresh_tokens),
    ]
