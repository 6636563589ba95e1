"""The image providers there are, by the name IMAGE_PROVIDERS gives them: each a function making it
from settings.

The names are settings.PROVIDER_KEYS' (name -> the setting holding its API key): settings validates
IMAGE_PROVIDERS against them at start-up, in every process, and can't import botcore; the system
check botcore.E002 keeps this registry and those names in step.
"""

from collections.abc import Callable

import httpx
from django.conf import settings

from .base import Provider
from .gemini import GeminiProvider
from .openai_compat import OpenAICompatProvider


def gemini(client: httpx.AsyncClient | None) -> GeminiProvider:
    return GeminiProvider(
        client=client,
        api_key=settings.GEMINI_API_KEY,
        base_url=settings.GEMINI_BASE_URL,
        model=settings.IMAGE_MODEL,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        max_retries=0,  # the chain retries, and fails over first
    )


def openai(client: httpx.AsyncClient | None) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        client=client,
        api_key=settings.OPENAI_IMAGES_API_KEY,
        base_url=settings.OPENAI_IMAGES_BASE_URL,
        model=settings.OPENAI_IMAGES_MODEL,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
    )


PROVIDERS: dict[str, Callable[[httpx.AsyncClient | None], Provider]] = {"gemini": gemini, "openai": openai}


def configured(client: httpx.AsyncClient | None) -> list[Provider]:
    """The providers IMAGE_PROVIDERS names, in its order, sharing `client` (an httpx.AsyncClient;
    None when they are only read, not called)."""
    return [PROVIDERS[name](client) for name in settings.IMAGE_PROVIDERS]
