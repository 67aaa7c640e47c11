"""admin: the JSON API of the admin console under ``/api/v1/admin``.

Admin users live in storage with argon2 hashes; sessions are stored hashed with an idle
and an absolute expiry, travel as a bearer token or an HttpOnly cookie (then with a CSRF
token), and login failures are throttled per address and per username across workers.
The accounts, API keys, config, media cache, metrics and log endpoints keep the original
product's paths and shapes, without its faults: tokens are masked, saves are diffs
checked against a pool version, config is validated, secrets never leave, file names
never reach outside their directory. Batch operations run as durable jobs that another
worker resumes when the one working them dies.
"""
