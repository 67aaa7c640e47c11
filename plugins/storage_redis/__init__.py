"""storage_redis plugin."""
