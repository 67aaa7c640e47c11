"""Logging with secrets masked (``logger``) and the per-request log kept in storage (``request_log``)."""
