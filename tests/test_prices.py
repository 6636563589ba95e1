"""A model without a price stops start-up: its spend would otherwise be logged as $0."""

from tests.test_configuration import manage


def test_a_configured_model_without_a_price_stops_start_up_naming_it():
    result = manage("check", SECRET_KEY="x", IMAGE_PROVIDERS="gemini,openai", OPENAI_IMAGES_MODEL="gpt-image-2")

    assert result.returncode != 0
    assert "IMAGE_PRICES has no price for provider openai, model gpt-image-2, resolution 1K, 2K, 4K" in result.stderr


def test_the_gpt_image_models_have_built_in_prices():
    result = manage("check", SECRET_KEY="x", IMAGE_PROVIDERS="gemini,openai", OPENAI_IMAGES_MODEL="gpt-image-1.5")

    assert result.returncode == 0, result.stderr
