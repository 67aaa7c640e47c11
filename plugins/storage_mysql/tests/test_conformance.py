"""The storage conformance suite on a MariaDB server."""

import pytest

from grok2api.api import ServerSettings, Settings
from grok2api.testing.engines import mysql_url  # noqa: F401 - fixture
from grok2api.testing.storage_conformance import SqlConformance


class TestMysqlConformance(SqlConformance):
    factory = "grok2api_plugins.storage_mysql.engine:MysqlStorage"

    @pytest.fixture
    def settings(self, mysql_url: str) -> Settings:  # noqa: F811
        return Settings(server=ServerSettings(storage_type="mysql", storage_url=mysql_url))
