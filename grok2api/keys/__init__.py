"""Managed API keys: the service that checks and counts them, and their CLI."""
