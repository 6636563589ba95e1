"""Image providers behind one interface: `await provider.generate(ImageRequest) -> ImageResult`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from django.conf import settings

from . import registry
from .base import ImageRequest, ImageResult, ProviderError, Reference, Turn
from .chain import CircuitBreaker, ProviderChain
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
# provider stays skipped across requests; they are per process.
_breakers: dict[str, CircuitBreaker] = {}


@asynccontextmanager
async def open_provider() -> AsyncIterator[ProviderChain]:
    """The configured providers as one chain, with its own HTTP connection pool, closed on exit."""
    # One kept-alive connection per call the upstream queue lets run, in small pools (pools.py).
    transport = Pools(settings.UPSTREAM_CONCURRENCY)
    timeout = httpx.Timeout(settings.PROVIDER_TIMEOUT_SECONDS)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        yield ProviderChain(
            registry.configured(client),
            breaker_failures=settings.PROVIDER_BREAKER_FAILURES,
            breaker_cooldown_seconds=settings.PROVIDER_BREAKER_SECONDS,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            retry_base_delay=settings.PROVIDER_RETRY_BASE_SECONDS,
            breakers=_breakers,
        )
