"""OpenAI's images API (`/v1/images/generations` and `/v1/images/edits`), as relays speak it.

One attempt per call: retries and failover belong to the provider chain around it.
"""

import base64
import binascii
import json
import math
import time
from typing import IO, Any

import httpx

from .. import memory
from .base import ImageRequest, ImageResult, ProviderError, Reference, Usage, client_for_call, spool

LONG_SIDES = {"1K": 1024, "2K": 2048, "4K": 4096}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
# Codes that mean money or access, whatever the status: retrying only spends more calls.
OPERATOR_CODES = {
    "insufficient_quota",
    "billing_hard_limit_reached",
    "billing_not_active",
    "invalid_api_key",
    "model_not_found",
    "unknown_parameter",  # a field the model doesn't take: our request is wrong for it
}
# Fields we choose, not the user: a 400 naming one of them is ours to fix.
OUR_FIELDS = {"model", "size", "response_format", "n", "quality", "output_format", "background", "moderation"}
SAFETY_WORDS = ("content_policy", "safety", "moderation")

# What each model family accepts, from OpenAI's images API reference (openai-python,
# types/image_generate_params.py and image_edit_params.py):
# - `response_format` "isn't supported for the GPT image models, which always return base64";
# - gpt-image-1, gpt-image-1-mini, gpt-image-1.5 (and chatgpt-image-latest) take only the standard
#   sizes 1024x1024, 1536x1024 (landscape) and 1024x1536 (portrait);
# - gpt-image-2 takes any WIDTHxHEIGHT with both sides divisible by 16, a ratio between 1:3 and
#   3:1, and at most 3840x2160.
# Any other model (e.g. gemini-3-pro-image-preview behind a relay) gets the long side asked for.
STANDARD_SIZES = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "chatgpt-image-latest")
FREE_SIZES = ("gpt-image-2",)
MAX_EDGE, MAX_PIXELS = 3840, 3840 * 2160


def family(model: str) -> str:
    """The size family of a model name or a dated snapshot of one: "standard" or "free" (GPT image
    models), or "other"."""
    for name, models in (("standard", STANDARD_SIZES), ("free", FREE_SIZES)):
        if any(model == known or model.startswith(known + "-20") for known in models):
            return name
    return "other"


def size_for(resolution: str, aspect_ratio: str, model: str = "") -> str:
    """OpenAI's "WIDTHxHEIGHT" for a resolution ("1K", "2K", "4K": the long side) and an aspect
    ratio ("16:9"), as `model` accepts it."""
    try:
        long_side = LONG_SIDES[resolution]
        width, height = (int(side) for side in aspect_ratio.split(":"))
        ratio = min(width, height) / max(width, height)
    except (KeyError, ValueError, ZeroDivisionError):
        raise ProviderError(ProviderError.BAD_REQUEST, f"no size for {resolution} {aspect_ratio}") from None
    kind = family(model)
    if kind == "standard":
        return "1024x1024" if width == height else "1536x1024" if width > height else "1024x1536"
    if kind == "free":
        long_side = min(long_side, MAX_EDGE)
        # A square 4K is over the pixel limit: the largest of that shape within it.
        long_side = min(long_side, math.isqrt(MAX_PIXELS * max(width, height) // min(width, height)))
        long_side -= long_side % 16
        short_side = max(16, int(long_side * ratio) // 16 * 16)
    else:  # rounded to a multiple of 64, which relays commonly require
        short_side = max(64, round(long_side * ratio / 64) * 64)
    return f"{long_side}x{short_side}" if width >= height else f"{short_side}x{long_side}"


def request_fields(model: str, request: ImageRequest) -> dict[str, object]:
    fields: dict[str, object] = {
        "model": model,
        "prompt": request.prompt,
        "n": 1,
        "size": size_for(request.resolution, request.aspect_ratio, model),
    }
    if family(model) == "other":
        fields["response_format"] = "b64_json"
    return fields


class OpenAICompatProvider:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None,
        api_key: str,
        base_url: str,
        model: str,
        timeout: float,
        name: str = "openai",
    ) -> None:
        self.client = client
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.name = name

    async def generate(self, request: ImageRequest) -> ImageResult:
        started = time.monotonic()
        try:
            image, usage = await self._post(request)
            if isinstance(image, str):  # only a link to it
                image = await self._download(image)
        except httpx.TimeoutException:
            raise ProviderError(ProviderError.TIMEOUT, f"no answer within {self.timeout:.0f}s") from None
        except httpx.TransportError as exc:
            raise ProviderError(ProviderError.UNAVAILABLE, type(exc).__name__) from None
        file, mime_type = image
        return ImageResult(
            file=file,
            mime_type=mime_type,
            provider=self.name,
            model=self.model,
            upstream_ms=int((time.monotonic() - started) * 1000),
            usage=usage,
        )

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(10.0, self.timeout))

    async def _post(self, request: ImageRequest) -> tuple[tuple[IO[bytes], str] | str, Usage | None]:
        """(the image as (file, mime type), or its URL when the answer only links to it; its Usage or None)."""
        fields = request_fields(self.model, request)
        images = request.input_images
        if images:
            # Multipart fields are text; `image[]` is how the API takes several images.
            options: dict[str, Any] = {
                "data": {name: str(value) for name, value in fields.items()},
                "files": [("image[]", _upload(index, image)) for index, image in enumerate(images)],
            }
        else:
            options = {"json": fields}
        path = "/v1/images/edits" if images else "/v1/images/generations"
        async with client_for_call(self.client).stream(
            "POST",
            self.base_url + path,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=self._timeout(),
            **options,
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise http_error(response, self.api_key)
            # The wait for the image is over; reading and decoding it is bounded, not the wait.
            reading, _ = memory.for_this_loop()
            async with reading:
                # Not response.aread(): the response would keep the body after we are done with it.
                body = b"".join([chunk async for chunk in response.aiter_bytes()])
                payload = _json(body)
                del body
                item, usage = first_image(payload), usage_of(payload)
                del payload
                if item.get("b64_json"):
                    return _keep(_decode(item["b64_json"])), usage
                return str(item["url"]), usage

    async def _download(self, url: str) -> tuple[IO[bytes], str]:
        # No Authorization header: the link usually points at storage, not at the API host.
        async with client_for_call(self.client).stream("GET", url, timeout=self._timeout()) as response:
            if response.status_code != 200:
                # A dead link is the relay's fault, not the request's: let the chain fail over.
                raise ProviderError(ProviderError.UNAVAILABLE, f"image download: HTTP {response.status_code}")
            reading, _ = memory.for_this_loop()
            async with reading:
                return _keep(b"".join([chunk async for chunk in response.aiter_bytes()]))


def _upload(index: int, image: Reference) -> tuple[str, bytes, str]:
    return f"image-{index}.{EXTENSIONS.get(image.mime_type, 'png')}", image.data, image.mime_type


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        raise ProviderError(ProviderError.UNAVAILABLE, "answer is not JSON") from None


def usage_of(payload: Any) -> Usage | None:
    """The answer's `usage` by kind of token, or None without one. Output not broken down counts
    as image: that is all the GPT image models make."""
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return None
    given, made = usage.get("input_tokens_details") or {}, usage.get("output_tokens_details") or {}
    image_input, text_output = int(given.get("image_tokens") or 0), int(made.get("text_tokens") or 0)
    return Usage(
        text_input=int(usage.get("input_tokens") or 0) - image_input,
        image_input=image_input,
        text_output=text_output,
        image_output=int(usage.get("output_tokens") or 0) - text_output,
    )


def first_image(payload: Any) -> dict[str, Any]:
    """The first entry of `data` that holds an image (`b64_json` or `url`)."""
    items = payload.get("data") if isinstance(payload, dict) else None
    for item in items or []:
        if isinstance(item, dict) and (item.get("b64_json") or item.get("url")):
            return item
    raise ProviderError(ProviderError.NO_IMAGE, "the answer holds no image")


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ProviderError(ProviderError.NO_IMAGE, "image data is not valid base64") from None


def _keep(data: bytes) -> tuple[IO[bytes], str]:
    """(spooled file, mime type) of image bytes."""
    if not data:
        raise ProviderError(ProviderError.NO_IMAGE, "the image is empty")
    mime_type = sniff(data)
    return spool(data), mime_type


def sniff(data: bytes) -> str:
    """The mime type the bytes' magic says; relays don't always say it, and links rarely do."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


def http_error(response: httpx.Response, api_key: str) -> ProviderError:
    status = response.status_code
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = response.text[:200]
    if isinstance(error, dict):
        message, code, kind = (str(error.get(key) or "") for key in ("message", "code", "type"))
    else:  # some relays answer {"error": "text"}, or HTML
        message, code, kind = str(error), "", ""
    if api_key:  # some relays quote the key they were given; redacted before cutting, so no part of it stays
        message, code = message.replace(api_key, "***"), code.replace(api_key, "***")
    param = str(error.get("param") or "") if isinstance(error, dict) else ""
    detail = f"HTTP {status}: {message[:300]}" + (f" ({code[:50]})" if code else "")
    words = f"{code} {kind} {message}".lower()
    # A 400 naming a field we chose, or a field the model doesn't take, is our request's fault: the
    # admins are told and the next provider tried, instead of asking the user to rephrase.
    if code in OPERATOR_CODES or status in (401, 403, 404) or param in OUR_FIELDS:
        return ProviderError(ProviderError.OPERATOR, detail)
    if status == 429:
        return ProviderError(ProviderError.RATE_LIMITED, detail)
    if status >= 500:
        return ProviderError(ProviderError.UNAVAILABLE, detail)
    if status == 400 and any(word in words for word in SAFETY_WORDS):  # the user's prompt or images
        return ProviderError(ProviderError.SAFETY, detail)
    return ProviderError(ProviderError.BAD_REQUEST, detail)
