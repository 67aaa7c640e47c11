"""storage_mysql plugin."""
