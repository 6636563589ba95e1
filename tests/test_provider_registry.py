"""Providers come from a registry by name: an unknown name stops start-up, a provider half added fails the check."""

from botcore import checks
from botcore.providers import registry
from tests.test_configuration import manage


def test_an_unknown_provider_stops_start_up_naming_the_known_ones():
    result = manage("check", SECRET_KEY="x", IMAGE_PROVIDERS="gemini,dalle")

    assert result.returncode != 0
    assert result.stderr.strip() == (
        "nanobot: configuration error: IMAGE_PROVIDERS must list gemini and/or openai, each once, e.g. gemini,openai"
    )


def test_the_configured_providers_are_made_by_the_registry_in_their_order(settings):
    settings.IMAGE_PROVIDERS = ["openai", "gemini"]

    made = registry.configured(client=None)

    assert [(provider.name, provider.model) for provider in made] == [
        ("openai", settings.OPENAI_IMAGES_MODEL),
        ("gemini", settings.IMAGE_MODEL),
    ]


def test_a_provider_named_in_settings_without_a_factory_fails_the_system_check(settings):
    settings.PROVIDER_KEYS = {**settings.PROVIDER_KEYS, "dalle": "DALLE_API_KEY"}
    settings.IMAGE_PROVIDERS = ["dalle"]

    [error] = checks.provider_registry(None)

    assert error.id == "botcore.E002" and error.msg.endswith("only one of them names dalle")
    assert checks.image_prices(None) == []  # no price check of a provider that can't be made
