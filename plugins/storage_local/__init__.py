"""storage_local: the embedded default engine, one SQLite file ``<DATA_DIR>/grok2api.db`` in WAL mode."""
