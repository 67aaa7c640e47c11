"""storage_pgsql: PostgreSQL through SQLAlchemy + asyncpg; other workers learn of changes by LISTEN/NOTIFY."""
