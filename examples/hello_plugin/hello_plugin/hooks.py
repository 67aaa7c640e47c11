"""Hook implementations only: cheap to import, they hand objects to the kernel's registries.

Every ``grok2api`` command imports this module, ``--help`` included, so what the hooks
hand over is imported inside them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from grok2api.api import FilterRegistry, ModelRegistry


@hookimpl
def grok2api_register_models(models: ModelRegistry) -> None:
    from hello_plugin.model import HELLO, answer

    models.add(HELLO, chat=answer)


@hookimpl
def grok2api_register_filters(filters: FilterRegistry) -> None:
    from hello_plugin.polite import PoliteFilter

    filters.add(PoliteFilter())
