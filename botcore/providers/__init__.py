"""Image providers behind one interface: `await provider.generate(ImageRequest) -> ImageResult`."""

from contextlib import asynccontextmanager

import httpx
from django.conf import settings

from .base import ImageRequest, ImageResult, ProviderError, Reference, Turn
from .gemini import GeminiProvider

__all__ = ["ImageRequest", "ImageResult", "ProviderError", "Reference", "Turn", "GeminiProvider", "open_provider"]


@asynccontextmanager
async def open_provider():
    """The configured provider with its own HTTP connection pool, closed on exit."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(settings.PROVIDER_TIMEOUT_SECONDS)) as client:
        yield GeminiProvider(
            client=client,
            api_key=settings.GEMINI_API_KEY,
            base_url=settings.GEMINI_BASE_URL,
            model=settings.IMAGE_MODEL,
            timeout=settings.PROVIDER_TIMEOUT_SECONDS,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            retry_base_delay=settings.PROVIDER_RETRY_BASE_SECONDS,
        )
