"""Start-up checks of the configuration that settings.py alone can't judge."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from accounts.models import Resolution

from .providers import registry


def configured_models() -> list[tuple[str, str]]:
    """(provider, model) of every provider in IMAGE_PROVIDERS."""
    return [(provider.name, provider.model) for provider in registry.configured(client=None)]


@register()
def provider_registry(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """Every name IMAGE_PROVIDERS may use (settings.PROVIDER_KEYS) has a provider in the registry, and
    every provider there can be configured: a name on one side only is a provider half added."""
    known, made = set(settings.PROVIDER_KEYS), set(registry.PROVIDERS)
    if known == made:
        return []
    return [
        Error(
            "settings.PROVIDER_KEYS and botcore.providers.registry.PROVIDERS must name the same providers; "
            f"only one of them names {', '.join(sorted(known ^ made))}",
            hint="A provider needs both: its API key setting in PROVIDER_KEYS and a function making it in PROVIDERS.",
            id="botcore.E002",
        )
    ]


@register()
def image_prices(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """A configured model without a price would have its spend logged as $0: refuse to start instead."""
    if set(settings.IMAGE_PROVIDERS) - set(registry.PROVIDERS):  # botcore.E002 says why
        return []
    errors: list[CheckMessage] = []
    for provider, model in configured_models():
        priced = settings.IMAGE_PRICES.get(provider, {}).get(model, {})
        missing = [resolution for resolution in Resolution.values if resolution not in priced]
        if missing:
            errors.append(
                Error(
                    f"IMAGE_PRICES has no price for provider {provider}, model {model}, "
                    f"resolution {', '.join(missing)}",
                    hint=f'Add it, e.g. IMAGE_PRICES={{"{provider}": {{"{model}": {{"{missing[0]}": 0.134}}}}}}, '
                    "with the other models' prices (the variable replaces the whole table).",
                    id="botcore.E001",
                )
            )
    return errors
