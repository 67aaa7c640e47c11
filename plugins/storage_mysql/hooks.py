"""Offers the ``mysql`` storage engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from grok2api.api import Settings, Storage, StorageRegistry


def open_storage(settings: Settings) -> Storage:
    """The engine (and its database driver) is imported only when it is the one chosen."""
    from grok2api_plugins.storage_mysql.engine import MysqlStorage

    return MysqlStorage(settings)


@hookimpl
def grok2api_register_storage(storage: StorageRegistry) -> None:
    storage.add("mysql", open_storage)
