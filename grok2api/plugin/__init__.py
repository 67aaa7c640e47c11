"""The plugin machinery: hook specifications, the typed registries the hooks fill, the
plugin manager and the response-filter chain. Plugins use it through :mod:`grok2api.api`."""
