"""The small interface every image provider implements, and the errors it may raise.

A provider has a `name` (its key in settings and in the price table), a `model`, and
`async generate(ImageRequest) -> ImageResult`, raising ProviderError on failure.
"""

import asyncio
import logging
import random
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, TypeVar

import httpx

from botcore.errors import ErrorCode
from botcore.memory import MB

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Reference:
    data: bytes
    mime_type: str


@dataclass(frozen=True)
class Turn:
    """An earlier exchange of a multi-turn edit: what was asked, and the image that came back."""

    prompt: str
    references: tuple[Reference, ...]
    result: Reference
    thought_signature: str = ""  # Gemini's, sent back with its image to keep the model's context
    model_parts: tuple[dict[str, Any], ...] = ()  # Gemini's whole answer without image data (ImageResult.model_turn)


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    resolution: str
    aspect_ratio: str
    references: tuple[Reference, ...] = field(default=())
    history: tuple[Turn, ...] = field(default=())  # oldest first

    @property
    def input_images(self) -> tuple[Reference, ...]:
        """For APIs without conversations: the latest result being refined, then this turn's references."""
        latest = (self.history[-1].result,) if self.history else ()
        return latest + self.references


@dataclass(frozen=True)
class Usage:
    """The tokens an answer says it used, by kind: what token prices apply to."""

    text_input: int = 0
    image_input: int = 0
    text_output: int = 0  # Gemini's thoughts count here: they are billed as text output
    image_output: int = 0


@dataclass(frozen=True)
class ImageResult:
    file: IO[bytes]  # the image, spooled to disk when large, so waiting jobs don't hold it in memory
    mime_type: str
    provider: str
    model: str
    upstream_ms: int
    thought_signature: str = ""
    usage: Usage | None = None  # None when the answer didn't say
    model_turn: tuple[dict[str, Any], ...] = ()  # Gemini's answer, its image part without data: sent back on a refine
    passed_over: tuple["ProviderError", ...] = ()  # the ProviderErrors of the providers a chain tried before this one

    def close(self) -> None:
        self.file.close()


def spool(data: bytes) -> IO[bytes]:
    """A file holding `data`: in memory while small, on disk beyond a megabyte."""
    file = tempfile.SpooledTemporaryFile(max_size=MB)
    file.write(data)
    return file


def client_for_call(client: httpx.AsyncClient | None) -> httpx.AsyncClient:
    """A provider's client, for a call. A provider made without one (client=None) is only described: the
    start-up checks read its name and model."""
    if client is None:
        raise RuntimeError("a provider made without a client can't call its API")
    return client


class Provider(Protocol):
    """What a chain tries and the registry makes: GeminiProvider, OpenAICompatProvider, ProviderChain."""

    name: str
    model: str

    async def generate(self, request: ImageRequest) -> ImageResult: ...


class ProviderError(Exception):
    """A failed image call. `code` picks the words the user sees; `transient` says a retry may help."""

    SAFETY = ErrorCode.SAFETY
    NO_IMAGE = ErrorCode.NO_IMAGE
    INCOMPLETE = ErrorCode.INCOMPLETE
    LANGUAGE = ErrorCode.LANGUAGE
    BAD_REQUEST = ErrorCode.BAD_REQUEST
    OPERATOR = ErrorCode.OPERATOR
    RATE_LIMITED = ErrorCode.RATE_LIMITED
    UNAVAILABLE = ErrorCode.UNAVAILABLE
    TIMEOUT = ErrorCode.TIMEOUT

    TRANSIENT = {RATE_LIMITED, UNAVAILABLE}

    def __init__(self, code: ErrorCode | str, detail: str = "") -> None:
        code = ErrorCode(code)
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail

    @property
    def transient(self) -> bool:
        return self.code in self.TRANSIENT


async def with_retries(
    call: Callable[[], Awaitable[T]], *, max_retries: int, base_delay: float, max_delay: float = 30.0
) -> T:
    """Await `call()`, retrying transient ProviderErrors with exponential backoff and full jitter."""
    for attempt in range(max_retries):
        try:
            return await call()
        except ProviderError as exc:
            if not exc.transient:
                raise
            delay = random.uniform(0, min(max_delay, base_delay * 2**attempt))
            log.warning("image provider %s, retry %d in %.1fs", exc.code, attempt + 1, delay)
            await asyncio.sleep(delay)
    return await call()  # the last attempt: whatever it raises is the answer
