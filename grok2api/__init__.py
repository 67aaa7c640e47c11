"""grok2api: an OpenAI-compatible gateway in front of Grok's web app.

Plugins import only from this package: ``from grok2api import hookimpl``.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("grok2api")

__all__ = ["__version__", "hookimpl"]
