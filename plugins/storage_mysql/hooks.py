"""Offers the ``mysql`` storage engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from grok2api.api import StorageRegistry


@hookimpl
def grok2api_register_storage(storage: StorageRegistry) -> None:
    from grok2api_plugins.storage_mysql.engine import MysqlStorage

    storage.add("mysql", MysqlStorage)
