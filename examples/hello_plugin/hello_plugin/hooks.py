"""Hook implementations only: cheap to import, they hand objects to the kernel's registries."""

from grok2api import hookimpl
from grok2api.api import FilterRegistry, ModelRegistry
from hello_plugin.model import HELLO, answer
from hello_plugin.polite import PoliteFilter


@hookimpl
def grok2api_register_models(models: ModelRegistry) -> None:
    models.add(HELLO, chat=answer)


@hookimpl
def grok2api_register_filters(filters: FilterRegistry) -> None:
    filters.add(PoliteFilter())
