"""chat plugin."""
