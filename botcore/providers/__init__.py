"""Image providers behind one interface: `await provider.generate(ImageRequest) -> ImageResult`."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
from django.conf import settings

from botcore import metrics, shared

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
    "breaker_states",
]

# The breakers must outlive one job (a Celery worker opens the providers per job), so a dead
# provider stays skipped across requests: per process, or in Redis for every process (SharedBreaker).
_breakers: dict[str, Breaker] = {}


def _breaker(name: str) -> Breaker | None:
    """The provider's breaker, made to keep its state in Redis when CACHE_URL names one."""
    if name not in _breakers and shared.redis_url() is not None:
        _breakers[name] = SharedBreaker(
            name,
            settings.PROVIDER_BREAKER_FAILURES,
            settings.PROVIDER_BREAKER_SECONDS,
            # a trial call lasts at most the timeout, each retry included
            trial_seconds=settings.PROVIDER_TIMEOUT_SECONDS * (settings.PROVIDER_MAX_RETRIES + 1),
        )
    return _breakers.get(name)


def breaker_states() -> dict[str, str | None]:
    """Each configured provider's breaker state ("closed", "open" or "half-open"), in IMAGE_PROVIDERS' order:
    all of them with Redis; without, those this process has called, and None for the others (their breakers
    live in the process that serves the bot, which a web process that only serves the dashboard is not)."""
    breakers = {name: _breaker(name) for name in settings.IMAGE_PROVIDERS}
    return {name: None if breaker is None else breaker.state for name, breaker in breakers.items()}


def _breaker_states() -> Iterator[tuple[str, str]]:
    """(provider, state) of each configured provider's breaker known here."""
    for name, state in breaker_states().items():
        if state is not None:
            yield name, state


metrics.read_breakers(_breaker_states)


@asynccontextmanager
async def open_provider() -> AsyncIterator[ProviderChain]:
    """The configured providers as one chain, with its own HTTP connection pool, closed on exit."""
    # One kept-alive connection per call the upstream queue lets run, in small pools (pools.py).
    transport = Pools(settings.UPSTREAM_CONCURRENCY)
    timeout = httpx.Timeout(settings.PROVIDER_TIMEOUT_SECONDS)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        providers = registry.configured(client)
        for provider in providers:
            _breaker(provider.name)
        yield ProviderChain(
            providers,
            breaker_failures=settings.PROVIDER_BREAKER_FAILURES,
            breaker_cooldown_seconds=settings.PROVIDER_BREAKER_SECONDS,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            retry_base_delay=settings.PROVIDER_RETRY_BASE_SECONDS,
            breakers=_breakers,
        )
