"""storage_local plugin."""
