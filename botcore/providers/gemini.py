"""Google's Gemini native image API (`models/{model}:generateContent`), and relays that speak it."""

import base64
import binascii
import json
import re
import time
from typing import Any

import httpx

from .. import memory
from .base import (
    ImageRequest,
    ImageResult,
    ProviderError,
    Reference,
    Turn,
    Usage,
    client_for_call,
    spool,
    with_retries,
)

# What a candidate's finishReason means when it holds no image (google-genai's types.FinishReason,
# plus the Gemini API's PUP_LIMITED_DISABLED and MISSING_THOUGHT_SIGNATURE). Any other reason
# (STOP, NO_IMAGE, IMAGE_OTHER, OTHER, ...) is an answer without an image.
FINISH_REASONS = {
    **dict.fromkeys(
        [
            "SAFETY",
            "IMAGE_SAFETY",
            "PROHIBITED_CONTENT",
            "IMAGE_PROHIBITED_CONTENT",
            "BLOCKLIST",
            "SPII",
            "RECITATION",
            "IMAGE_RECITATION",
        ],
        ProviderError.SAFETY,
    ),
    # The account is limited, or our request left out a signature it needed: only an operator can fix it.
    "PUP_LIMITED_DISABLED": ProviderError.OPERATOR,
    "MISSING_THOUGHT_SIGNATURE": ProviderError.OPERATOR,
    "LANGUAGE": ProviderError.LANGUAGE,
    **dict.fromkeys(
        [
            "MAX_TOKENS",
            "MALFORMED_RESPONSE",
            "MALFORMED_FUNCTION_CALL",
            "UNEXPECTED_TOOL_CALL",
            "TOO_MANY_TOOL_CALLS",
        ],
        ProviderError.INCOMPLETE,
    ),
}
# When candidates disagree, the reason that explains most wins.
PRECEDENCE = [ProviderError.SAFETY, ProviderError.OPERATOR, ProviderError.LANGUAGE, ProviderError.INCOMPLETE]
DATA_URI = re.compile(r"data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=\s]+)")


class GeminiProvider:
    name = "gemini"

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None,
        api_key: str,
        base_url: str,
        model: str,
        timeout: float,
        max_retries: int = 2,
        retry_base_delay: float = 2.0,
    ) -> None:
        self.client = client
        self.api_key = api_key
        self.url = f"{base_url.rstrip('/')}/v1beta/models/{model}:generateContent"
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay

    async def generate(self, request: ImageRequest) -> ImageResult:
        body = request_body(request)
        return await with_retries(
            lambda: self._post(body), max_retries=self.max_retries, base_delay=self.retry_base_delay
        )

    async def _post(self, body: dict[str, Any]) -> ImageResult:
        started = time.monotonic()
        try:
            async with client_for_call(self.client).stream(
                "POST",
                self.url,
                json=body,
                headers={"x-goog-api-key": self.api_key},
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise http_error(response)
                # The wait for the image is over; reading and decoding it is bounded, not the wait.
                reading, _ = memory.for_this_loop()
                async with reading:
                    # Not response.aread(): the response would keep the body after we are done with it.
                    answer = b"".join([chunk async for chunk in response.aiter_bytes()])
                    payload = _json(answer)
                    del answer
                    data, mime_type, signature, turn = extract_image(payload)
                    usage = usage_of(payload)
                    del payload
                    file = spool(data)
                    del data
        except httpx.TimeoutException:
            raise ProviderError(ProviderError.TIMEOUT, f"no answer within {self.timeout:.0f}s") from None
        except httpx.TransportError as exc:
            raise ProviderError(ProviderError.UNAVAILABLE, type(exc).__name__) from None
        upstream_ms = int((time.monotonic() - started) * 1000)
        return ImageResult(
            file=file,
            mime_type=mime_type,
            provider=self.name,
            model=self.model,
            upstream_ms=upstream_ms,
            thought_signature=signature,
            model_turn=turn,
            usage=usage,
        )


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        raise ProviderError(ProviderError.UNAVAILABLE, "answer is not JSON") from None


def request_body(request: ImageRequest) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    for turn in request.history:
        contents.append({"role": "user", "parts": _user_parts(turn.prompt, turn.references)})
        contents.append({"role": "model", "parts": _model_parts(turn)})
    contents.append({"role": "user", "parts": _user_parts(request.prompt, request.references)})
    return {
        "contents": contents,
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": request.aspect_ratio, "imageSize": request.resolution},
        },
    }


def _model_parts(turn: Turn) -> list[dict[str, Any]]:
    """The model's earlier answer as it gave it (its text and every part's signature, as the SDK's
    chat keeps it), with the image put back into the part it came in."""
    if not turn.model_parts:  # an answer kept before whole turns were, or not from Gemini
        answer = _inline(turn.result)
        if turn.thought_signature:
            answer["thoughtSignature"] = turn.thought_signature
        return [answer]
    return [part | _inline(turn.result) if "inlineData" in part else part for part in turn.model_parts]


def _user_parts(prompt: str, references: tuple[Reference, ...]) -> list[dict[str, Any]]:
    return [{"text": prompt}, *(_inline(reference) for reference in references)]


def _inline(reference: Reference) -> dict[str, Any]:
    return {"inlineData": {"mimeType": reference.mime_type, "data": base64.b64encode(reference.data).decode()}}


def http_error(response: httpx.Response) -> ProviderError:
    status = response.status_code
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    detail = f"HTTP {status}: {message}"
    if status == 429:
        return ProviderError(ProviderError.RATE_LIMITED, detail)
    if status >= 500:
        return ProviderError(ProviderError.UNAVAILABLE, detail)
    if status in (401, 403, 404) or "API key" in message:
        return ProviderError(ProviderError.OPERATOR, detail)
    return ProviderError(ProviderError.BAD_REQUEST, detail)


def extract_image(payload: dict[str, Any]) -> tuple[bytes, str, str, tuple[dict[str, Any], ...]]:
    """The final image of an answer as (bytes, mime type, thought signature, the answer's parts
    without image data), or the ProviderError that explains its absence."""
    block = (payload.get("promptFeedback") or {}).get("blockReason")
    if block:
        raise ProviderError(ProviderError.SAFETY, f"prompt blocked: {block}")
    reasons: list[str] = []
    texts: list[str] = []
    for candidate in payload.get("candidates") or []:
        reasons.append(candidate.get("finishReason", ""))
        # Gemini 3 Pro Image sends draft images marked as thoughts before the final one.
        parts = (candidate.get("content") or {}).get("parts") or []
        for index in reversed(range(len(parts))):
            part = parts[index]
            if part.get("thought"):
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            if inline and inline.get("data"):
                mime_type = inline.get("mimeType") or inline.get("mime_type") or "image/png"
                signature = part.get("thoughtSignature") or part.get("thought_signature") or ""
                return _decode(inline["data"]), mime_type, signature, _without_images(parts, index)
            match = DATA_URI.search(part.get("text") or "")
            if match:
                return _decode(match.group(2)), match.group(1), "", ()
            if part.get("text"):
                texts.append(part["text"])
    said = f"; model said: {texts[-1][:200]}" if texts else ""
    for code in PRECEDENCE:
        for reason in reasons:
            if FINISH_REASONS.get(reason) == code:
                raise ProviderError(code, f"finish reason {reason}{said}")
    raise ProviderError(ProviderError.NO_IMAGE, f"finish reasons {reasons or 'none'}{said}")


def usage_of(payload: dict[str, Any]) -> Usage | None:
    """The tokens of usageMetadata by kind, or None when the answer has none. Without a breakdown
    by modality, all the output counts as image: spend is never under-reported."""
    meta = payload.get("usageMetadata")
    if not isinstance(meta, dict):
        return None

    def by_modality(key: str) -> dict[str, int]:
        return {item.get("modality"): int(item.get("tokenCount") or 0) for item in meta.get(key) or []}

    given, made = by_modality("promptTokensDetails"), by_modality("candidatesTokensDetails")
    prompt, candidates = int(meta.get("promptTokenCount") or 0), int(meta.get("candidatesTokenCount") or 0)
    image_output = made.get("IMAGE", 0) if made else candidates
    return Usage(
        text_input=prompt - given.get("IMAGE", 0),
        image_input=given.get("IMAGE", 0),
        text_output=candidates - image_output + int(meta.get("thoughtsTokenCount") or 0),
        image_output=image_output,
    )


def _without_images(parts: list[dict[str, Any]], final: int) -> tuple[dict[str, Any], ...]:
    """The answer's parts to keep for a refine: the final image's part stripped of its data (the
    result itself is kept apart), draft images left out (they are not kept), the rest as is."""
    kept: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        inline: Any = part.get("inlineData") or part.get("inline_data")  # the final part's is there
        if index == final:
            rest = {key: value for key, value in part.items() if key not in ("inlineData", "inline_data")}
            kept.append(rest | {"inlineData": {"mimeType": inline.get("mimeType") or inline.get("mime_type")}})
        elif not inline:
            kept.append(part)
    return tuple(kept)


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ProviderError(ProviderError.NO_IMAGE, "image data is not valid base64") from None
