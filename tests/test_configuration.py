"""A missing or malformed setting stops start-up with one line that names it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    environment.update(NANOBOT_ENV_FILE="", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "env, named",
    [
        ({}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "x", "DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"SECRET_KEY": "x", "PROVIDER_MAX_RETRIES": "two"}, "PROVIDER_MAX_RETRIES has an invalid value"),
        ({"SECRET_KEY": "x", "DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL must start with"),
        ({"SECRET_KEY": "x", "CACHE_URL": "127.0.0.1:6379"}, "CACHE_URL must start with"),
        ({"SECRET_KEY": "x", "ADMIN_TELEGRAM_IDS": "12,bob"}, "ADMIN_TELEGRAM_IDS must be Telegram user ids"),
        ({"SECRET_KEY": "x", "IMAGE_PROVIDERS": "gemini,dalle"}, "IMAGE_PROVIDERS must list gemini and/or openai"),
        ({"SECRET_KEY": "x", "DELIVERY_MODE": "fax"}, "DELIVERY_MODE must be photo, document or both"),
        ({"SECRET_KEY": "x", "IMAGE_PRICES": '{"gemini": 3}'}, "IMAGE_PRICES must be JSON like"),
        ({"SECRET_KEY": "x", "JOB_LEASE_SECONDS": "0"}, "JOB_LEASE_SECONDS must be 2 or more"),
    ],
)
def test_bad_configuration_is_one_clear_line(env, named):
    result = manage("check", **env)
    [line] = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert line.startswith("nanobot: configuration error:") and named in line


def test_every_bad_setting_is_named_in_one_run():
    result = manage("check", DEBUG="maybe", PROVIDER_MAX_RETRIES="two", DELIVERY_MODE="fax")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "nanobot: configuration error: DEBUG must be true or false, not 'maybe'",
        "nanobot: configuration error: SECRET_KEY is not set; add it to .env or the environment",
        "nanobot: configuration error: PROVIDER_MAX_RETRIES has an invalid value: "
        "invalid literal for int() with base 10: 'two'",
        "nanobot: configuration error: DELIVERY_MODE must be photo, document or both",
    ]


@pytest.mark.parametrize("missing", ["TELEGRAM_BOT_TOKEN", "GEMINI_API_KEY", "OPENAI_IMAGES_API_KEY"])
def test_runbot_says_what_to_set(settings, missing):
    settings.IMAGE_PROVIDERS = ["gemini", "openai"]
    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    settings.GEMINI_API_KEY = "key"
    settings.OPENAI_IMAGES_API_KEY = "key"
    setattr(settings, missing, "")
    with pytest.raises(CommandError, match=f"^{missing} is not set"):
        call_command("runbot")


def test_runbot_names_every_missing_key_at_once(settings):
    settings.IMAGE_PROVIDERS = ["gemini", "openai"]
    settings.TELEGRAM_BOT_TOKEN = settings.GEMINI_API_KEY = settings.OPENAI_IMAGES_API_KEY = ""
    with pytest.raises(CommandError) as error:
        call_command("runbot")
    assert str(error.value) == (
        "TELEGRAM_BOT_TOKEN, GEMINI_API_KEY and OPENAI_IMAGES_API_KEY are not set; add them to .env or the environment"
    )
