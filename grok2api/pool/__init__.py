"""The token pool: Grok accounts, their state machine, selection per request, quota sync.

See ``docs/pool.md``. The kernel builds one :class:`TokenPool` per process; plugins
reach it as ``request.app[POOL]`` and call :meth:`TokenPool.call` or
:meth:`TokenPool.stream` around each upstream request.
"""

from grok2api.pool.account import POOL_BASIC, POOL_SUPER, UNKNOWN, Account, Bucket, Status, normalize_token
from grok2api.pool.lease import Lease, LeasedStream
from grok2api.pool.pool import TokenPool
from grok2api.pool.refresh import RefreshProgress

__all__ = [
    "POOL_BASIC",
    "POOL_SUPER",
    "UNKNOWN",
    "Account",
    "Bucket",
    "Lease",
    "LeasedStream",
    "RefreshProgress",
    "Status",
    "TokenPool",
    "normalize_token",
]
