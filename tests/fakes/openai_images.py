"""A fake of OpenAI's images API, as relays serve it: POST /v1/images/generations (JSON) and
POST /v1/images/edits (multipart/form-data, one or more `image[]` files).

Answers with real images (Pillow) in the real response shape, records every request, and
plays queued behaviours (errors, links instead of inline images, odd answers) one per request.
Images answered as links are served by the fake itself at GET /files/<id>.<ext>, without auth,
like the signed storage URLs the real API hands out.
The server runs in daemon threads; test-side waits are async so the bot's loop keeps running.
"""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from .http import ImageApiFake, parse_multipart, send, wait_until

ROUTES = {"/v1/images/generations": "generations", "/v1/images/edits": "edits"}
COMMON_PARAMS = {"model", "prompt", "n", "size", "response_format", "quality", "background", "output_format"}
PARAMS = {
    "generations": COMMON_PARAMS | {"style", "moderation", "output_compression", "user", "stream", "partial_images"},
    "edits": COMMON_PARAMS | {"input_fidelity", "output_compression", "user", "stream", "partial_images"},
}
FILE_PARAMS = {"image", "image[]", "mask"}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp"}
MAX_IMAGES = 16  # gpt-image-1 takes up to 16 input images
# Sizes this relay accepts for other models: both sides multiples of 64 in [MIN_SIDE, MAX_SIDE], at most MAX_RATIO:1.
MIN_SIDE, MAX_SIDE, MAX_RATIO = 256, 4096, 3
# OpenAI's own GPT image models: these take the standard sizes only, and gpt-image-2 takes sides
# divisible by 16 up to 3840x2160 (pixels and edge), at most 3:1; none takes response_format.
STANDARD_SIZE_MODELS = {"gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "chatgpt-image-latest"}
FREE_SIZE_MODELS = {"gpt-image-2", "gpt-image-2-2026-04-21"}
STANDARD_SIZES = {(1024, 1024), (1536, 1024), (1024, 1536)}
DEFAULT_SIZE = (1024, 1024)  # for size "auto" or none
# (message, type, code) of the real API's errors, by status, and by code where the code decides the words.
DEFAULT_ERRORS = {
    400: ("Invalid value for 'prompt'.", "invalid_request_error", "invalid_value"),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: (
        "Your organization must be verified to use the model `gpt-image-1`. Please go to: "
        "https://platform.openai.com/settings/organization/general and click on Verify Organization.",
        "invalid_request_error",
        None,
    ),
    404: ("The model `{model}` does not exist or you do not have access to it.", "invalid_request_error", None),
    429: (
        "Rate limit reached for images per minute (IPM): Limit 5, Used 5, Requested 1. Please try again in 12s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}
CODE_ERRORS = {
    "content_policy_violation": (
        "Your request was rejected as a result of our safety system. "
        "Your prompt may contain text that is not allowed by our safety system.",
        "invalid_request_error",
    ),
    "moderation_blocked": (
        "Your request was rejected by the safety system. If you believe this is an error, "
        "contact us at help.openai.com and include the request ID req_0123456789abcdef.",
        "image_generation_user_error",
    ),
    "insufficient_quota": (
        "You exceeded your current quota, please check your plan and billing details. For more information "
        "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
    ),
    "billing_hard_limit_reached": ("Billing hard limit has been reached", "invalid_request_error"),
}
GARBAGE = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"  # noqa: E501
KINDS = {"image", "url", "http_error", "garbage", "empty"}


@dataclass
class Received:
    method: str
    path: str
    fields: dict | None  # the JSON body or the form fields; None when the body could not be parsed
    files: list[tuple[str, str, bytes]]  # (filename, content type, bytes) of every uploaded file, in order
    headers: dict[str, str]  # header names lower-cased
    at: float  # time.monotonic() on arrival
    file_fields: list[str] = field(default_factory=list)  # the form field name of each file

    @property
    def prompt(self) -> str:
        return str((self.fields or {}).get("prompt", ""))


def _error(status: int, message: str, type: str | None = None, code: str | None = None, param: str | None = None):
    return status, {"error": {"message": message, "type": type, "param": param, "code": code}}


def _invalid(message: str, param: str | None = None, code: str = "invalid_value"):
    return _error(400, message, "invalid_request_error", code, param)


def _mask(key: str) -> str:
    # As the real API quotes a wrong key: its first and last characters only.
    return key[:3] + "*" * max(4, len(key) - 7) + key[-4:] if len(key) > 10 else "*" * len(key)


def _parse_size(size, model="") -> tuple[int, int] | None:
    if size in (None, "auto"):
        return DEFAULT_SIZE
    match = re.fullmatch(r"(\d+)x(\d+)", str(size))
    if not match:
        return None
    width, height = int(match[1]), int(match[2])
    if model in STANDARD_SIZE_MODELS:
        return (width, height) if (width, height) in STANDARD_SIZES else None
    if model in FREE_SIZE_MODELS:
        fits = max(width, height) <= 3840 and width * height <= 3840 * 2160 and min(width, height) >= 16
        shaped = width % 16 == 0 and height % 16 == 0 and max(width, height) <= 3 * min(width, height)
        return (width, height) if fits and shaped else None
    if not all(side % 64 == 0 and MIN_SIDE <= side <= MAX_SIDE for side in (width, height)):
        return None
    if max(width, height) > MAX_RATIO * min(width, height):
        return None
    return width, height


def _validate(route: str, fields: dict, file_fields: list[str], files: list[tuple[str, str, bytes]]):
    """The real API's 400 for a malformed request, as (status, answer), or None."""
    for name in list(fields) + file_fields:
        if name not in PARAMS[route] and not (route == "edits" and name in FILE_PARAMS):
            return _invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    if not str(fields.get("prompt") or "").strip():
        return _invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    try:
        n = int(fields.get("n", 1))
    except (TypeError, ValueError):
        return _invalid(f"Invalid type for 'n': expected an integer, but got {fields['n']!r} instead.", "n")
    if not 1 <= n <= 10:
        return _invalid(f"Invalid 'n': integer must be between 1 and 10, got {n}.", "n")
    model = str(fields.get("model") or "")
    gpt_image = model in STANDARD_SIZE_MODELS | FREE_SIZE_MODELS
    if gpt_image and "response_format" in fields:
        return _invalid("Unknown parameter: 'response_format'.", "response_format", "unknown_parameter")
    if model in STANDARD_SIZE_MODELS and _parse_size(fields.get("size"), model) is None:
        return _invalid(
            f"Invalid value: '{fields.get('size')}'. Supported values are: "
            "'1024x1024', '1024x1536', '1536x1024', and 'auto'.",
            "size",
        )
    if model in FREE_SIZE_MODELS and _parse_size(fields.get("size"), model) is None:
        return _invalid(
            f"Invalid size '{fields.get('size')}'. Width and height must both be divisible by 16, the aspect "
            "ratio must be between 1:3 and 3:1, and the maximum supported resolution is 3840x2160.",
            "size",
        )
    if _parse_size(fields.get("size"), model) is None:
        return _invalid(
            f"Invalid value: '{fields.get('size')}'. Supported values are: 'auto' and WIDTHxHEIGHT, both sides "
            f"multiples of 64 between {MIN_SIDE} and {MAX_SIDE}, at most {MAX_RATIO}:1.",
            "size",
        )
    if fields.get("response_format", "url") not in ("url", "b64_json"):
        message = f"Invalid value: '{fields['response_format']}'. Supported values are: 'url' and 'b64_json'."
        return _invalid(message, "response_format")
    if route == "edits":
        images = [file for name, file in zip(file_fields, files, strict=True) if name in ("image", "image[]")]
        if not images:
            return _invalid("Missing required parameter: 'image'.", "image", "missing_required_parameter")
        if len(images) > MAX_IMAGES:
            return _invalid(f"Too many images: at most {MAX_IMAGES} are allowed.", "image")
        for index, (_, content_type, data) in enumerate(images, 1):
            if content_type not in IMAGE_TYPES:
                return _invalid(
                    f"Invalid file 'image': unsupported mimetype ('{content_type}'). "
                    "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
                    "image",
                    "unsupported_file_mimetype",
                )
            try:
                Image.open(io.BytesIO(data)).verify()
            except (UnidentifiedImageError, OSError, SyntaxError):
                return _invalid(f"Invalid image file or mode for image {index}, please check your image file.", "image")
    return None


class FakeOpenAIImages(ImageApiFake):
    KINDS = KINDS

    def __init__(self, api_key: str = "sk-test-0123456789abcdef"):
        super().__init__()
        self.api_key = api_key
        self.requests: list[Received] = []  # every request, file downloads included
        self._images: dict[tuple, bytes] = {}  # (width, height, format, color) -> encoded image
        self._files: dict[str, tuple[bytes, str]] = {}  # id served at /files/<id>.<ext> -> (bytes, type)

    # ----- test-side API -----
    async def wait_for(self, predicate, timeout: float = 10, what: str = "condition"):
        def describe():
            with self._lock:
                seen = [(r.method, r.path, r.prompt[:80]) for r in self.requests[-10:]]
            return f"waiting for {what}; {len(self.requests)} requests, last: {seen}"

        return await wait_until(predicate, self, timeout, describe)

    # ----- HTTP plumbing -----
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if handler.command == "GET" and path.startswith("/files/"):
            return self._download(handler, path, headers)
        route = ROUTES.get(path) if handler.command == "POST" else None
        if route is None:
            status, answer = _error(404, f"Invalid URL ({handler.command} {path})", "invalid_request_error")
            return send(handler, status, json.dumps(answer).encode(), "application/json")
        fields, named_files = self._parse(handler, route, raw)
        file_fields = [name for name, _ in named_files]
        files = [file for _, file in named_files]
        with self._in_flight(Received("POST", path, fields, files, headers, time.monotonic(), file_fields)):
            try:
                status, answer = self._answer(route, fields, file_fields, files, headers, handler)
                if isinstance(answer, bytes):  # "garbage"
                    return send(handler, status, answer, "text/html")
                send(handler, status, json.dumps(answer).encode(), "application/json")
            except Exception:  # a bug in the fake: make it visible instead of hanging the test
                traceback.print_exc()
                status, answer = _error(500, "fake crashed", "server_error")
                send(handler, status, json.dumps(answer).encode(), "application/json")

    def _parse(self, handler, route: str, raw: bytes) -> tuple[dict | None, list]:
        """(fields, [(field name, file)]) of the body; fields is None when it is not the route's format."""
        content_type = handler.headers.get_content_type()
        if route == "generations":
            try:
                body = json.loads(raw)
            except ValueError:
                return None, []
            return (body if isinstance(body, dict) else None), []
        if content_type != "multipart/form-data" or not handler.headers.get_param("boundary"):
            return None, []
        fields, files = parse_multipart(raw, handler.headers.get_param("boundary"))
        return fields, [(name, (filename, ctype or "", data)) for name, filename, ctype, data in files]

    def _answer(self, route, fields, file_fields, files, headers, handler) -> tuple[int, dict | bytes]:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (i.e. Authorization: "
                "YOUR_KEY) when using HTTP Basic auth.",
                "invalid_request_error",
            )
        if key.strip() != self.api_key:
            return _error(
                401,
                f"Incorrect API key provided: {_mask(key.strip())}. "
                "You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        if fields is None:
            if route == "generations":
                return _invalid(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
                    "valid JSON.)",
                    code=None,
                )
            content_type = handler.headers.get("Content-Type", "")
            return _invalid(f"Invalid Content-Type header ({content_type}), expected multipart/form-data.", code=None)
        if answer := _validate(route, fields, file_fields, files):
            return answer
        kind, kw = self._next_behaviour()
        return getattr(self, "_kind_" + kind)(fields, **kw)

    def _download(self, handler, path: str, headers: dict) -> None:
        with self._lock:
            self.requests.append(Received("GET", path, None, [], headers, time.monotonic()))
            stored = self._files.get(path.removeprefix("/files/").partition(".")[0])
        if stored is None:
            body = b"<?xml version='1.0' encoding='utf-8'?><Error><Code>BlobNotFound</Code></Error>"
            return send(handler, 404, body, "application/xml")
        send(handler, 200, *stored)

    # ----- answers: _kind_<kind>(fields, **kw) -> (status, JSON dict or raw bytes) -----
    def _kind_image(
        self, fields, width=None, height=None, image_format="PNG", as_url=None, usage=True
    ) -> tuple[int, dict]:
        """Images of the requested size, inline (b64_json) or as links, as response_format asks;
        without `usage` as some relays answer."""
        if width is None or height is None:
            width, height = _parse_size(fields.get("size"), str(fields.get("model") or ""))
        fmt = image_format.upper()
        if as_url is None:  # GPT image models always answer base64
            gpt_image = fields.get("model") in STANDARD_SIZE_MODELS | FREE_SIZE_MODELS
            as_url = fields.get("response_format", "url") == "url" and not gpt_image
        data = []
        for _ in range(int(fields.get("n", 1))):
            image = self._image(width, height, fmt)
            if as_url:
                data.append({"url": self._publish(image, fmt)})
            else:
                data.append({"b64_json": base64.b64encode(image).decode()})
        prompt_tokens = max(1, len(str(fields.get("prompt", ""))) // 4)
        answer = {"created": int(time.time()), "data": data, "output_format": fmt.lower(), "size": f"{width}x{height}"}
        if usage:
            answer["usage"] = {
                "input_tokens": prompt_tokens,
                "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0},
                "output_tokens": 1056 * len(data),
                "total_tokens": prompt_tokens + 1056 * len(data),
            }
        return 200, answer

    def _kind_url(self, fields, **kw) -> tuple[int, dict]:
        """A link instead of inline data, whatever response_format asked: what many relays do."""
        return self._kind_image(fields, as_url=True, **kw)

    def _kind_http_error(self, fields, status: int = 500, message=None, code=None, type=None, param=None):
        default_message, default_type, default_code = DEFAULT_ERRORS.get(status, ("Error", "server_error", None))
        code_message, code_type = CODE_ERRORS.get(code, (None, None))
        message = message or code_message or default_message.format(model=fields.get("model", ""))
        return _error(status, message, type or code_type or default_type, code or default_code, param)

    def _kind_garbage(self, fields, status: int = 502, content: bytes = GARBAGE) -> tuple[int, bytes]:
        """An HTML error page from a proxy in front of the relay."""
        return status, content

    def _kind_empty(self, fields) -> tuple[int, dict]:
        """200 without images: some relays answer so when the model returned none."""
        return 200, {"created": int(time.time()), "data": []}

    # ----- helpers -----
    def _image(self, width: int, height: int, fmt: str, color: tuple = (70, 130, 180)) -> bytes:
        key = (width, height, fmt, color)
        with self._lock:
            data = self._images.get(key)
        if data is None:  # encode outside the lock; a rare duplicate encode is harmless
            buf = io.BytesIO()
            Image.new("RGB", (width, height), color).save(buf, fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
            data = buf.getvalue()
            with self._lock:
                self._images[key] = data
        return data

    def _publish(self, image: bytes, fmt: str) -> str:
        file_id = secrets.token_hex(8)
        extension = {"JPEG": "jpg"}.get(fmt, fmt.lower())
        with self._lock:
            self._files[file_id] = (image, f"image/{fmt.lower()}")
        return f"{self.base_url}/files/{file_id}.{extension}"
