"""Start-up checks of the configuration that settings.py alone can't judge."""

from django.conf import settings
from django.core.checks import Error, register

from accounts.models import Resolution


def configured_models():
    """(provider, model) of every provider in IMAGE_PROVIDERS."""
    models = {"gemini": settings.IMAGE_MODEL, "openai": settings.OPENAI_IMAGES_MODEL}
    return [(provider, models[provider]) for provider in settings.IMAGE_PROVIDERS]


@register()
def image_prices(app_configs, **kwargs):
    """A configured model without a price would have its spend logged as $0: refuse to start instead."""
    errors = []
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
