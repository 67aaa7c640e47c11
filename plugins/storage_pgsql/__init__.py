"""storage_pgsql plugin."""
