"""The ``[admin]`` config section: session lifetimes, login throttling, the password rule, the
parallelism of online-asset work (two of the original's ``performance`` keys)."""

from __future__ import annotations

from pydantic import Field, model_validator

from grok2api.api import Section


class AdminSettings(Section):
    session_idle_sec: int = Field(2 * 3600, ge=60, description="a session unused this long ends")
    session_max_sec: int = Field(24 * 3600, ge=60, description="a session ends this long after login, used or not")
    login_window_sec: int = Field(900, ge=10, description="the window login failures are counted in")
    login_max_failures_per_address: int = Field(10, ge=1, description="failed logins from one address per window")
    login_max_failures_per_user: int = Field(30, ge=1, description="failed logins for one username per window")
    min_password_length: int = Field(10, ge=8, le=128, description="shortest new admin password accepted")
    log_dir: str = Field("logs", description="where `grok2api serve` writes its log files (relative: to the "
                         "working directory), for the log routes")
    assets_delete_batch_size: int = Field(10, ge=1, le=100, description="parallel deletions of one account's "
                                          "online assets (the original's performance.assets_delete_batch_size)")
    assets_batch_size: int = Field(10, ge=1, le=100, description="accounts asked about their online assets at once "
                                   "(the original's performance.admin_assets_batch_size)")

    @model_validator(mode="after")
    def _idle_within_max(self) -> AdminSettings:
        if self.session_idle_sec > self.session_max_sec:
            raise ValueError("session_idle_sec must not exceed session_max_sec")
        return self
