"""A claim on one account for one upstream request, and the stream that carries a claim along.

A lease is returned exactly once: :meth:`Lease.release` with the outcome (None for
success) lets the state machine judge the account; :meth:`Lease.abandon` returns it
without a verdict (the client went away, or our own code failed). Later calls are
no-ops, so every code path may release without tracking whether another already did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from grok2api.logs.logger import logger, mask_secret
from grok2api.pool.account import Account, Bucket
from grok2api.upstream.errors import UpstreamError

if TYPE_CHECKING:
    from grok2api.plugin.registries import ModelSpec

E = TypeVar("E")
#: the pool's handler: (lease, outcome, judged) -> None
Settle = Callable[["Lease", UpstreamError | None, bool], None]


class Lease:
    __slots__ = ("account", "model", "bucket", "charged", "_settle", "_returned")

    def __init__(self, account: Account, model: ModelSpec, bucket: Bucket, charged: int, settle: Settle) -> None:
        self.account = account
        self.model = model
        self.bucket = bucket
        self.charged = charged  # units taken from the quota estimate at acquisition
        self._settle = settle
        self._returned = False

    @property
    def token(self) -> str:
        return self.account.token

    @property
    def returned(self) -> bool:
        return self._returned

    async def release(self, outcome: UpstreamError | None = None) -> None:
        """Return the account with the request's outcome: None for success, else the failure."""
        self._give_back(outcome, True)

    async def abandon(self) -> None:
        """Return the account without judging it."""
        self._give_back(None, False)

    async def fail(self, error: BaseException) -> None:
        """Return the account after ``error``: an upstream failure judges it, anything else does not."""
        self._give_back(error if isinstance(error, UpstreamError) else None, isinstance(error, UpstreamError))

    def _give_back(self, outcome: UpstreamError | None, judged: bool) -> None:
        if not self._returned:
            self._returned = True
            self._settle(self, outcome, judged)

    def __repr__(self) -> str:
        return f"Lease({mask_secret(self.token)}, {self.model.id}, returned={self._returned})"


async def close_quietly(iterator: AsyncIterator[object] | None) -> None:
    """Close an upstream iterator we stop reading (an async generator's ``finally`` runs now)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:
            logger.warning("pool: closing an upstream stream failed: {}", exc)


class LeasedStream(Generic[E]):
    """An upstream stream whose first event is already in hand, holding its account's lease.

    Iterating yields the first event, then the rest. The end of the stream releases the
    lease as a success; an :class:`UpstreamError` while reading releases it with that
    failure (and is raised: it is never retried, the client has seen data).
    :meth:`aclose` before the end returns the lease without a verdict; :meth:`release`
    ends the stream with the outcome the caller decides.
    """

    _EMPTY = object()

    def __init__(self, lease: Lease, first: E, rest: AsyncIterator[E]) -> None:
        self.lease = lease
        self._first: object = first
        self._rest = rest

    def __aiter__(self) -> LeasedStream[E]:
        return self

    async def __anext__(self) -> E:
        if self._first is not self._EMPTY:
            first, self._first = self._first, self._EMPTY
            return first  # type: ignore[return-value]
        if self.lease.returned:
            raise StopAsyncIteration
        try:
            return await anext(self._rest)
        except StopAsyncIteration:
            await self.lease.release()
            raise
        except BaseException as error:
            await close_quietly(self._rest)
            await self.lease.fail(error)
            raise

    async def release(self, outcome: UpstreamError | None = None) -> None:
        await close_quietly(self._rest)
        await self.lease.release(outcome)

    async def aclose(self) -> None:
        await close_quietly(self._rest)
        await self.lease.abandon()

    async def __aenter__(self) -> LeasedStream[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

