"""A fake of Google's Gemini REST endpoint POST /v1beta/models/{model}:generateContent.

Answers with real images (Pillow) in the real response shape, records every request, and
plays queued behaviours (errors, safety blocks, odd answers, delays) one per request.
The server runs in daemon threads; test-side waits are async so the bot's loop keeps running.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import secrets
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from .http import ImageApiFake, send, wait_until

# Output sizes for imageSize "1K" from Google's docs; "2K" doubles them, "4K" quadruples.
SIZES_1K = {
    "1:1": (1024, 1024),
    "16:9": (1376, 768),
    "9:16": (768, 1376),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "21:9": (1584, 672),
}
SCALES = {"1K": 1, "2K": 2, "4K": 4}  # uppercase K only: the real API rejects "1k"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "models/{model} is not found for API version v1beta, or is not supported for generateContent.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
KINDS = {"image", "http_error", "finish", "prompt_blocked", "text_only", "data_uri", "delay", "garbage", "these_bytes"}


@dataclass
class Received:
    model: str
    body: dict | None  # None when the body was not valid JSON
    headers: dict[str, str]  # header names lower-cased
    at: float  # time.monotonic() on arrival

    @property
    def prompt(self) -> str:
        return "\n".join(p["text"] for p in _request_parts(self.body) if "text" in p)

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """(mimeType, decoded bytes) of every inline image sent."""
        inline = [_get(p, "inlineData") for p in _request_parts(self.body)]
        return [(_get(d, "mimeType"), base64.b64decode(d["data"])) for d in inline if d]


def _request_parts(body) -> list[dict]:
    return [p for c in (body or {}).get("contents") or [] for p in c.get("parts") or []]


def _get(mapping: dict, camel: str, default=None):
    # The REST API accepts proto field names in camelCase and snake_case alike.
    snake = re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), camel)
    return mapping.get(camel, mapping.get(snake, default))


def _error(status: int, message: str | None = None, model: str = "") -> tuple[int, dict]:
    message = message or DEFAULT_MESSAGES.get(status, "Error").format(model=model)
    return status, {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}


def _by_modality(**counts) -> list[dict]:
    return [{"modality": modality, "tokenCount": count} for modality, count in counts.items() if count]


def _signature() -> str:
    return base64.b64encode(secrets.token_bytes(24)).decode()


def _validate(body) -> str | None:
    """Google's 400 message for a malformed request, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Unexpected token."
    contents = body.get("contents")
    if not contents:
        return "* GenerateContentRequest.contents: contents is not specified\n"
    for i, content in enumerate(contents):
        for j, part in enumerate(content.get("parts") or []):
            inline = _get(part, "inlineData")
            try:
                if inline is not None:
                    base64.b64decode(inline.get("data", ""), validate=True)
            except (binascii.Error, ValueError):
                return (
                    f"Invalid value at 'contents[{i}].parts[{j}].inline_data.data' (TYPE_BYTES), Base64 decoding failed"
                )
    image_config = _get(_get(body, "generationConfig", {}), "imageConfig", {})
    if _get(image_config, "aspectRatio", "1:1") not in SIZES_1K:
        return f"Unsupported aspect ratio: {_get(image_config, 'aspectRatio')}"
    if _get(image_config, "imageSize", "1K") not in SCALES:
        return f"Unsupported image size: {_get(image_config, 'imageSize')}. Use 1K, 2K or 4K."
    return None


class FakeGemini(ImageApiFake):
    KINDS = KINDS

    def __init__(self, api_key: str = "test-key"):
        super().__init__()
        self.api_key = api_key
        self.image_format = "PNG"  # or "JPEG"
        self.noisy = False  # random pixels, True or a share of rows: big files (a 4K noisy PNG is ~50 MB)
        self.with_thought_image = False  # Gemini 3 Pro: an interim "thought" image first
        self.requests: list[Received] = []
        self._images: dict[tuple, str] = {}  # (width, height, format, noisy, color) -> base64
        self._encoding = threading.Lock()

    # ----- test-side API -----
    async def wait_for(self, predicate, timeout: float = 10, what: str = "condition"):
        def describe():
            with self._lock:
                seen = [(r.model, r.prompt[:80]) for r in self.requests[-10:]]
            return f"waiting for {what}; {len(self.requests)} requests, last: {seen}"

        return await wait_until(predicate, self, timeout, describe)

    def image_size(self, aspect_ratio: str = "1:1", image_size: str = "1K") -> tuple[int, int]:
        width, height = SIZES_1K[aspect_ratio]
        return width * SCALES[image_size], height * SCALES[image_size]

    # ----- HTTP plumbing -----
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        match = re.fullmatch(r"/v1beta/models/([^/:]+):generateContent", url.path)
        if handler.command != "POST" or not match:
            status, answer = _error(404, f"Method not found: {url.path}")
            return send(handler, status, json.dumps(answer).encode(), "application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._in_flight(Received(match[1], body, headers, time.monotonic())):
            try:
                key = headers.get("x-goog-api-key") or parse_qs(url.query).get("key", [None])[0]
                status, answer = self._answer(match[1], body, key)
                if isinstance(answer, bytes):  # "garbage"
                    return send(handler, status, answer, "text/html; charset=utf-8")
                send(handler, status, json.dumps(answer).encode(), "application/json; charset=UTF-8")
            except Exception:  # a bug in the fake: make it visible instead of hanging the test
                traceback.print_exc()
                status, answer = _error(500, "fake crashed")
                send(handler, status, json.dumps(answer).encode(), "application/json")

    def _answer(self, model: str, body, key: str | None) -> tuple[int, dict | bytes]:
        if key != self.api_key:
            # Real: missing key -> 403 PERMISSION_DENIED, wrong key -> 400 API_KEY_INVALID;
            # we answer 403 for both because our client treats 401/403 as an operator error.
            return _error(
                403,
                "Method doesn't allow unregistered callers (callers without "
                "established identity). Please use API Key or other form of "
                "API consumer identity to call this API."
                if not key
                else "API key not valid. Please pass a valid API key.",
            )
        if problem := _validate(body):
            return _error(400, problem)
        kind, kw = self._next_behaviour()
        return getattr(self, "_kind_" + kind)(model, body, **kw)

    # ----- answers: _kind_<kind>(model, body, **kw) -> (status, JSON dict or raw bytes) -----
    def _kind_image(
        self, model, body, width=None, height=None, image_format=None, noisy=None, text="Here is your image."
    ) -> tuple[int, dict]:
        config = _get(body, "generationConfig", {})
        if "IMAGE" not in _get(config, "responseModalities", ["TEXT", "IMAGE"]):
            return self._kind_text_only(model, body, "I can only answer with text here.")
        image_config = _get(config, "imageConfig", {})
        image_size = _get(image_config, "imageSize", "1K")
        if width is None or height is None:
            width, height = self.image_size(_get(image_config, "aspectRatio", "1:1"), image_size)
        fmt = (image_format or self.image_format).upper()
        # Gemini 3 Pro Image signs the first part after its thoughts and every image part.
        parts = [{"text": text, "thoughtSignature": _signature()}] if text else []
        if self.with_thought_image:  # interim image while "thinking", flagged thought: true
            parts.insert(0, {"text": "Planning the composition.", "thought": True})
            parts.insert(1, {"inlineData": self._inline(256, 256, fmt, False, (200, 60, 60)), "thought": True})
        parts.append(
            {
                "inlineData": self._inline(width, height, fmt, self.noisy if noisy is None else noisy),
                "thoughtSignature": _signature(),
            }
        )
        return 200, self._response(model, body, parts, image_tokens=2000 if image_size == "4K" else 1120)

    def _kind_delay(self, model, body, seconds: float = 5.0) -> tuple[int, dict]:
        self._stopping.wait(seconds)  # sleep, but wake at once when the server stops
        return self._kind_image(model, body)

    def _kind_http_error(self, model, body, status: int = 500, message: str | None = None):
        return _error(status, message, model)

    def _kind_finish(
        self, model, body, finish_reason: str = "IMAGE_SAFETY", message: str | None = None, text: str | None = None
    ) -> tuple[int, dict]:
        answer = self._response(model, body, [], finish=finish_reason)
        candidate = answer["candidates"][0]
        if text is None:
            del candidate["content"]  # blocked answers usually carry no content at all
        else:
            candidate["content"]["parts"] = [{"text": text}]
        if message:
            candidate["finishMessage"] = message
        return 200, answer

    def _kind_prompt_blocked(self, model, body, block_reason: str = "PROHIBITED_CONTENT"):
        answer = self._response(model, body, [])
        del answer["candidates"]
        answer["promptFeedback"] = {"blockReason": block_reason}
        return 200, answer

    def _kind_text_only(self, model, body, text: str = "I'm sorry, I can't create that image."):
        return 200, self._response(model, body, [{"text": text}])

    def _kind_data_uri(self, model, body) -> tuple[int, dict]:
        # Some relays inline the image as a markdown data URI inside a text part.
        _, answer = self._kind_image(model, body, text=None)
        inline = answer["candidates"][0]["content"]["parts"][-1]["inlineData"]
        uri = f"data:{inline['mimeType']};base64,{inline['data']}"
        answer["candidates"][0]["content"]["parts"] = [{"text": f"Here is your image:\n\n![image]({uri})"}]
        return 200, answer

    def _kind_these_bytes(self, model, body, data: bytes, mime_type: str = "image/png") -> tuple[int, dict]:
        # What a broken or hostile relay could answer: any bytes, labelled as an image.
        _, answer = self._kind_image(model, body)
        answer["candidates"][0]["content"]["parts"][-1]["inlineData"] = {
            "mimeType": mime_type,
            "data": base64.b64encode(data).decode(),
        }
        return 200, answer

    def _kind_garbage(self, model, body, content: bytes = b"<html><body>502 Bad Gateway</body></html>"):
        return 200, content

    # ----- helpers -----
    def _inline(self, width: int, height: int, fmt: str, noisy: bool | float, color: tuple = (70, 130, 180)) -> dict:
        key = (width, height, fmt, noisy, color)
        # One encode per image: a burst's 200 requests arrive together, and 200 threads encoding the
        # same 2K PNG at once would make the fake, not the bot, the slow part.
        with self._encoding:
            data = self._images.get(key)
            if data is None:
                # noisy: True fills the image with random pixels, a fraction fills that share of its rows.
                image = Image.new("RGB", (width, height), color)
                rows = int(height * float(noisy))
                if rows:
                    image.paste(Image.frombytes("RGB", (width, rows), os.urandom(width * rows * 3)), (0, 0))
                buf = io.BytesIO()
                # Noise does not compress anyway; level 0 saves seconds on an all-noise 4K image.
                png = {"compress_level": 0 if rows == height else 1}
                image.save(buf, fmt, **(png if fmt == "PNG" else {"quality": 90}))
                data = self._images[key] = base64.b64encode(buf.getvalue()).decode()
        return {"mimeType": f"image/{fmt.lower()}", "data": data}

    def _response(self, model, body, parts, finish="STOP", image_tokens=0) -> dict:
        # Rough counts: ~4 characters per text token, 258 tokens per input image.
        sent = _request_parts(body)
        text_in = max(1, sum(len(p.get("text", "")) for p in sent) // 4)
        image_in = 258 * sum(1 for p in sent if _get(p, "inlineData"))
        text_out = sum(len(p.get("text", "")) // 4 for p in parts)
        prompt_tokens, output_tokens = text_in + image_in, image_tokens + text_out
        usage = {
            "promptTokenCount": prompt_tokens,
            "totalTokenCount": prompt_tokens + output_tokens,
            "promptTokensDetails": _by_modality(TEXT=text_in, IMAGE=image_in),
        }
        if output_tokens:  # blocked answers carry no candidatesTokenCount
            usage["candidatesTokenCount"] = output_tokens
            usage["candidatesTokensDetails"] = _by_modality(TEXT=text_out, IMAGE=image_tokens)
        if self.with_thought_image and image_tokens:
            usage["thoughtsTokenCount"] = 180
            usage["totalTokenCount"] += 180
        candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": secrets.token_urlsafe(16),
        }
