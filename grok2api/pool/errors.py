"""What the pool refuses with; the web layer turns each into an HTTP status."""

from __future__ import annotations


class NoAccountAvailable(Exception):
    """No account can take the request now.

    ``retry_after`` is the number of seconds until one may (accounts cooling down, busy
    or already tried); None when none can at all (none configured for the model's pool,
    or all expired or disabled).
    """

    def __init__(self, message: str, *, retry_after: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class AccountNotFound(LookupError):
    """No account has this token."""


class InvalidAccountField(ValueError):
    """An operator's edit names a field it may not change, or gives it a bad value."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
