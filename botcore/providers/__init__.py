"""Image providers behind one interface: `await provider.generate(ImageRequest) -> ImageResult`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from django.conf import settings

from botcore import shared

from . import registry
from .base import ImageRequest, ImageResult, ProviderError, Reference, Turn
from .breakers import Breaker, SharedBreaker
from .chain import ProviderChain
from .gemini import GeminiProvider
from .openai_compat import OpenAICompatProvider
from .pools import Pools

__all__ = [
    "ImageRequest",
    "ImageResult",
    "ProviderError",
    "Reference",
    "Turn",
    "GeminiProvider",
    "OpenAICompatProvider",
    "ProviderChain",
    "open_provider",
]

# The breakers must outlive one job (a Celery worker opens the providers per job), so a dead
# provider stays skipped across requests: per process, or in Redis for every process (SharedBreaker).
_breakers: dict[str, Breaker] = {}


@asynccontextmanager
async def open_provider() -> AsyncIterator[ProviderChain]:
    """The configured providers as one chain, with its own HTTP connection pool, closed on exit."""
    # One kept-alive connection per call the upstream queue lets run, in small pools (pools.py).
    transport = Pools(settings.UPSTREAM_CONCURRENCY)
    timeout = httpx.Timeout(settings.PROVIDER_TIMEOUT_SECONDS)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        providers = registry.configured(client)
        if shared.redis_url() is not None:
            for provider in providers:
                if provider.name not in _breakers:
                    _breakers[provider.name] = SharedBreaker(
                        provider.name,
                        settings.PROVIDER_BREAKER_FAILURES,
                        settings.PROVIDER_BREAKER_SECONDS,
                        # a trial call lasts at most the timeout, each retry included
                        trial_seconds=settings.PROVIDER_TIMEOUT_SECONDS * (settings.PROVIDER_MAX_RETRIES + 1),
                    )
        yield ProviderChain(
            providers,
            breaker_failures=settings.PROVIDER_BREAKER_FAILURES,
            breaker_cooldown_seconds=settings.PROVIDER_BREAKER_SECONDS,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            retry_base_delay=settings.PROVIDER_RETRY_BASE_SECONDS,
            breakers=_breakers,
        )
