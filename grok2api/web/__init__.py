"""The HTTP side: the app factory, the kernel's routes, middleware, authentication and errors.

A request passes ``middleware`` (request id, errors, CORS), ``auth`` (API key or admin
session), then a route of ``routes`` that dispatches ``/v1`` by model and capability.
"""
