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
    # One connection per call the upstream queue lets run, all kept alive: a pool with calls waiting in it
    # (or closing idle connections past its keep-alive count) spends CPU on every event in its bookkeeping.
    concurrency = settings.UPSTREAM_CONCURRENCY
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(settings.PROVIDER_TIMEOUT_SECONDS)) as client:
        yield ProviderChain(
            registry.configured(client),
            breaker_failures=settings.PROVIDER_BREAKER_FAILURES,
            breaker_cooldown_seconds=settings.PROVIDER_BREAKER_SECONDS,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            retry_base_delay=settings.PROVIDER_RETRY_BASE_SECONDS,
            breakers=_breakers,
        )
