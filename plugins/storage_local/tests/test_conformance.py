"""The storage conformance suite on a SQLite file."""

from pathlib import Path

import pytest

from grok2api.api import ServerSettings, Settings
from grok2api.testing.storage_conformance import SqlConformance


class TestLocalConformance(SqlConformance):
    factory = "grok2api_plugins.storage_local.engine:LocalStorage"

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data_dir=tmp_path / "data", server=ServerSettings(storage_type="local"))
