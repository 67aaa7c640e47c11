"""The ``[admin]`` config section: session lifetimes, login throttling, the password rule."""

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

    @model_validator(mode="after")
    def _idle_within_max(self) -> AdminSettings:
        if self.session_idle_sec > self.session_max_sec:
            raise ValueError("session_idle_sec must not exceed session_max_sec")
        return self
