"""The storage conformance suite on a PostgreSQL server."""

import pytest

from grok2api.api import ServerSettings, Settings
from grok2api.testing.engines import pgsql_url  # noqa: F401 - fixture
from grok2api.testing.storage_conformance import SqlConformance


class TestPgsqlConformance(SqlConformance):
    factory = "grok2api_plugins.storage_pgsql.engine:PgsqlStorage"

    @pytest.fixture
    def settings(self, pgsql_url: str) -> Settings:  # noqa: F811
        return Settings(server=ServerSettings(storage_type="pgsql", storage_url=pgsql_url))
