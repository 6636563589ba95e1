"""A fake Telegram Bot API server for tests, spoken to by the real python-telegram-bot.

Wire format as in the real API: PTB posts application/x-www-form-urlencoded (multipart/form-data
when it uploads a file) where every non-string value is a JSON string; answers are
{"ok": true, "result": ...} or {"ok": false, "error_code": N, "description": "..."}.
The server runs in daemon threads; the test-side waits are async so the bot's loop keeps running.
"""

from __future__ import annotations

import copy
import hashlib
import html
import io
import json
import math
import mimetypes
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from PIL import Image

from .http import parse_multipart, send, serve, shutdown, wait_until

MB = 1024 * 1024
PHOTO_SIDES = (90, 320, 800, 1280)  # thumbnails Telegram adds below the main size
PHOTO_MAX_SIDE = 2560  # Telegram scales photos down to this long side
# Free-text parameters stay strings; PTB JSON-encodes every other non-string value.
TEXT_PARAMS = {"text", "caption", "parse_mode", "action", "photo", "document", "file_id", "url", "callback_query_id"}
TEXT_PARAMS |= {"title", "description", "payload", "currency", "pre_checkout_query_id", "error_message"}
TEXT_PARAMS |= {"telegram_payment_charge_id", "provider_token"}
DEFAULT_ERRORS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    500: "Internal Server Error",
}
HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
}
# Telegram's send limits, enforced only with FakeTelegram(rate_limits=True):
GLOBAL_RATE = 30  # messages per second a bot may send overall (Bot API FAQ)
GLOBAL_BURST = 30  # the global bucket holds one second's worth
CHAT_RATE = 1.0  # messages per second to one chat (Bot API FAQ)
CHAT_BURST = 3  # private chats tolerate short bursts before 429
# Methods that create a message in a chat (a media group counts as one message).
MESSAGE_METHODS = {
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "sendAnimation",
    "sendVideo",
    "sendAudio",
    "sendVoice",
    "sendSticker",
    "copyMessage",
    "forwardMessage",
}
RAW = "raw item"  # what push_raw() queued, returned as it is
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


@dataclass
class UploadedFile:
    data: bytes
    filename: str | None
    content_type: str | None


@dataclass
class Call:
    method: str  # canonical spelling, e.g. "sendPhoto"
    params: dict  # JSON-decoded values: chat_id is an int, reply_markup a dict
    files: dict[str, UploadedFile]
    at: float  # time.monotonic() on arrival
    status: int | None = None  # HTTP status answered; None while still running (long poll)


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.status = status
        self.body = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            self.body["parameters"] = {"retry_after": retry_after}


class _Bucket:
    """Token bucket refilled continuously at `rate` tokens/s up to `burst` (starts full)."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, float(burst), time.monotonic()

    def wait(self, now: float) -> float:
        """Seconds until one token is available; 0 if one is available now."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return max(0.0, (1 - self.tokens) / self.rate)

    def take(self) -> None:
        self.tokens -= 1


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # Telegram measures text in UTF-16 code units


def _render_html(text: str) -> str:
    """Reject HTML the server would reject (unknown/unbalanced tags); return the visible text."""
    stack = []
    for m in re.finditer(r"<(/?)([\w-]*)[^<>]*>|<", text):
        name, where = (m[2] or "").lower(), f"at byte offset {len(text[: m.start()].encode())}"
        if name not in HTML_TAGS:
            raise _bad(f'can\'t parse entities: Unsupported start tag "{name}" {where}')
        if not m[1]:
            stack.append(name)
        elif not stack or stack.pop() != name:
            raise _bad(f"can't parse entities: Unmatched end tag {where}")
    if stack:
        raise _bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return html.unescape(re.sub(r"<[^<>]*>", "", text))


_photo_cache: dict[str, list[tuple[int, int, bytes]]] = {}


def _render_photo(data: bytes) -> list[tuple[int, int, bytes]]:
    """Telegram re-encodes a photo as JPEGs of several sizes; cached by content hash."""
    key = hashlib.sha1(data).hexdigest()
    if key not in _photo_cache:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        long_side = max(image.size)
        renders = []
        for side in [min(long_side, PHOTO_MAX_SIDE)] + [s for s in PHOTO_SIDES[::-1] if s < long_side]:
            image.thumbnail((side, side))  # shrink step by step: cheaper than from the original
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=87)
            renders.insert(0, (image.width, image.height, buf.getvalue()))
        _photo_cache[key] = renders
    return _photo_cache[key]


def _decode_form(raw: dict[str, str]) -> dict:
    params = {}
    for key, value in raw.items():
        try:
            params[key] = value if key in TEXT_PARAMS else json.loads(value)
        except ValueError:
            params[key] = value  # e.g. chat_id="@channel"
    return params


class FakeTelegram:
    def __init__(self, token: str = "123:ABC", rate_limits: bool = False):
        self.token = token
        self.rate_limits = rate_limits  # enforce Telegram's send limits (429 + retry_after)
        self.bot_user = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "NanoBot",
            "username": "nanobot_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.calls: list[Call] = []
        self._cond = threading.Condition(threading.RLock())  # guards all state below
        self._updates: list[dict] = []
        self._next_update_id = 1
        self._chats: dict[int, dict] = {}  # chat_id -> Chat
        self._messages: dict[int, dict[int, dict]] = {}  # chat_id -> message_id -> visible message
        self._last_id: dict[int, int] = {}  # chat_id -> last message_id (ids never repeat)
        self._content: dict[tuple[int, int], tuple] = {}  # what "message is not modified" compares
        self._files: dict[str, dict] = {}  # file_id -> {"data", "info", and "photo" or "document"}
        self._failures: dict[str, list[ApiError]] = {}
        self._commands: dict[str, list] = {}
        self._global_bucket = _Bucket(GLOBAL_RATE, GLOBAL_BURST)
        self._chat_buckets: dict[str, _Bucket] = {}  # str(chat_id) -> bucket, made full on first use
        self.rate_limited = 0  # 429 answers produced by the limiter (not by fail_next)
        self.messages_sent = 0  # successful MESSAGE_METHODS calls, limits on or off
        self._stopping = False
        self._methods = {n[3:].lower(): n[3:] for n in dir(self) if n.startswith("_m_")}
        self._server: ThreadingHTTPServer | None = None
        # Telegram Stars: checkouts asked (query id -> the query), their answers, and the bot's transactions.
        self._checkouts: dict[str, dict] = {}
        self._invoices: dict[tuple[int, int], str] = {}  # (chat_id, message_id) -> the invoice's payload
        self.checkout_answers: dict[str, dict] = {}
        self.star_transactions: list[dict] = []

    def start(self) -> FakeTelegram:
        self._stopping = False
        self._server = serve(self)
        port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        self.base_file_url = f"http://127.0.0.1:{port}/file/bot"
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()  # long polls answer [] at once
        if self._server:
            shutdown(self._server)
            self._server = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----- test-side API -----
    def push_update(self, update: dict) -> dict:
        with self._cond:
            update.setdefault("update_id", self._next_update_id)
            self._next_update_id = max(self._next_update_id, update["update_id"]) + 1
            if message := update.get("message"):  # keep it visible in the chat
                chat_id, message_id = message["chat"]["id"], message["message_id"]
                self._chats.setdefault(chat_id, message["chat"])
                self._messages.setdefault(chat_id, {})[message_id] = message
                self._last_id[chat_id] = max(self._last_id.get(chat_id, 0), message_id)
            self._updates.append(update)
            self._cond.notify_all()  # wake a waiting getUpdates
            return copy.deepcopy(update)

    def push_raw(self, item, numbered: bool = True) -> int:
        """Queue anything as the next element of getUpdates' result, even what Telegram would never
        send (a broken relay's `{"message": {}}`, a string); a dict gets the next update_id unless
        `numbered` is False. Returns the id that confirms it."""
        with self._cond:
            update_id = self._next_update_id
            self._next_update_id += 1
            if numbered and isinstance(item, dict):
                item = {"update_id": update_id, **item}
            self._updates.append({"update_id": update_id, RAW: item})
            self._cond.notify_all()
            return update_id

    def push_text(self, user_id: int, text: str, **kw) -> dict:
        content = {"text": text}
        if text.startswith("/"):  # CommandHandler needs the bot_command entity
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(text.split()[0])}]
        return self.push_message(user_id, content, **kw)

    def push_photo(
        self, user_id: int, file_bytes: bytes, caption: str | None = None, media_group_id: str | None = None, **kw
    ) -> dict:
        with self._cond:
            content = {"photo": self._store_photo(file_bytes), "caption": caption, "media_group_id": media_group_id}
        return self.push_message(user_id, content, **kw)

    def push_document(
        self,
        user_id: int,
        file_bytes: bytes,
        file_name: str = "image.png",
        mime_type: str | None = None,
        caption: str | None = None,
        **kw,
    ) -> dict:
        with self._cond:
            document = self._store_document(UploadedFile(file_bytes, file_name, mime_type))
        return self.push_message(user_id, {"document": document, "caption": caption}, **kw)

    def push_callback(self, user_id: int, message_id: int, data: str, chat_id: int | None = None, **kw) -> dict:
        """A press on an inline button under message `message_id`, by user_id."""
        chat_id = user_id if chat_id is None else chat_id
        with self._cond:
            message = self._messages.get(chat_id, {}).get(message_id)
            if message is None:
                raise ValueError(f"no message {message_id} in chat {chat_id}")
            sender = {"id": user_id, "is_bot": False, "first_name": kw.get("first_name", "Alice")}
            if kw.get("language_code", "en"):
                sender["language_code"] = kw.get("language_code", "en")
            query = {
                "id": str(uuid.uuid4().int)[:18],
                "from": sender,
                "message": copy.deepcopy(message),
                "chat_instance": str(chat_id),
                "data": data,
            }
        return self.push_update({"callback_query": query})

    def add_file(self, data: bytes, file_path_prefix: str = "documents", ext: str = "bin") -> str:
        """Register downloadable bytes (getFile + GET /file/...); returns the file_id."""
        with self._cond:
            return self._store_file(data, file_path_prefix, ext)["file_id"]

    def fail_next(
        self,
        method: str,
        status: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` answer this error instead."""
        if status == 429:
            retry_after = retry_after or 1
            description = description or f"Too Many Requests: retry after {retry_after}"
        error = ApiError(status, description or DEFAULT_ERRORS.get(status, "Error"), retry_after)
        with self._cond:
            self._failures.setdefault(method.lower(), []).extend([error] * times)

    def calls_of(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method.lower() == method.lower()]

    def chat(self, chat_id: int) -> list[dict]:
        """Messages currently visible in the chat, oldest first, edits applied."""
        with self._cond:
            return copy.deepcopy(list(self._messages.get(chat_id, {}).values()))

    async def wait_for(self, predicate, timeout: float = 10, what: str = "condition"):
        """Poll predicate(self) without blocking the event loop; returns its truthy result."""

        def describe():
            with self._cond:
                calls = "\n".join(
                    f"  {c.method} {json.dumps(c.params, ensure_ascii=False)[:200]} files={list(c.files)} -> {c.status}"
                    for c in self.calls[-15:]
                )
            return f"waiting for {what}; last calls:\n{calls or '  (none)'}"

        return await wait_until(predicate, self, timeout, describe)

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        def enough(tg):
            calls = tg.calls_of(method)
            return calls if len(calls) >= count else None

        return await self.wait_for(enough, timeout, what=f"{count} x {method}")

    # ----- HTTP plumbing -----
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        path = unquote(url.path)  # PTB percent-encodes file URLs (the token's ":" is %3A)
        try:
            if path.startswith("/file/bot"):
                return self._serve_file(handler, path)
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            match = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
            if not match:
                raise ApiError(404, "Not Found")
            if match[1] != self.token:
                raise ApiError(401, "Unauthorized")
            params, files = self._parse_request(handler, url.query, body)
            status, answer = 200, {"ok": True, "result": self._api_call(match[2], params, files)}
        except ApiError as error:
            status, answer = error.status, error.body
        except Exception:  # a bug in the fake: show it rather than let the test hang
            traceback.print_exc()
            status, answer = 500, {"ok": False, "error_code": 500, "description": "fake crashed"}
        send(handler, status, json.dumps(answer, ensure_ascii=False).encode(), "application/json")

    def _parse_request(self, handler, query: str, body: bytes) -> tuple[dict, dict]:
        params, files = _decode_form(dict(parse_qsl(query))), {}
        ctype = handler.headers.get_content_type()
        if ctype == "application/json" and body:
            params.update(json.loads(body))
        elif ctype == "application/x-www-form-urlencoded":
            params.update(_decode_form(dict(parse_qsl(body.decode(), keep_blank_values=True))))
        elif ctype == "multipart/form-data":
            fields, uploads = parse_multipart(body, handler.headers.get_param("boundary"))
            files = {name: UploadedFile(data, filename, ctype) for name, filename, ctype, data in uploads}
            params.update(_decode_form(fields))
        return params, files

    def _api_call(self, name: str, params: dict, files: dict):
        method = self._methods.get(name.lower())  # method names are case-insensitive
        if method is None:
            raise ApiError(404, "Not Found")
        call = Call(method, params, files, time.monotonic())
        with self._cond:
            self.calls.append(call)
            try:
                if failures := self._failures.get(method.lower()):
                    raise failures.pop(0)
                counted = method in MESSAGE_METHODS
                buckets = self._limit(params) if counted and self.rate_limits else []
                result = copy.deepcopy(getattr(self, "_m_" + method)(params, files))
                for bucket in buckets:  # only a message actually sent spends tokens
                    bucket.take()
                self.messages_sent += counted
                call.status = 200
                return result
            except ApiError as error:
                call.status = error.status
                raise

    def _limit(self, params: dict) -> list[_Bucket]:
        """Refuse with 429 like the real server if the global or the chat bucket is empty;
        else return the buckets the call will spend from. Called under self._cond."""
        key = str(params.get("chat_id"))
        buckets = [self._global_bucket, self._chat_buckets.setdefault(key, _Bucket(CHAT_RATE, CHAT_BURST))]
        now = time.monotonic()
        wait = max(bucket.wait(now) for bucket in buckets)
        if wait > 0:
            self.rate_limited += 1
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        return buckets

    def _serve_file(self, handler, path: str) -> None:
        file_path = path.removeprefix(f"/file/bot{self.token}/")
        with self._cond:
            data = next((f["data"] for f in self._files.values() if f["info"]["file_path"] == file_path), None)
        if data is None:
            answer = {"ok": False, "error_code": 404, "description": "Not Found"}
            return send(handler, 404, json.dumps(answer).encode(), "application/json")
        send(handler, 200, data, "application/octet-stream")

    # ----- state helpers (the lock is held, or taken: it is re-entrant) -----
    def push_message(
        self,
        user_id: int,
        content: dict,
        *,
        chat_id: int | None = None,
        username: str | None = "alice",
        first_name: str = "Alice",
        language_code: str | None = "en",
        reply_to_message_id: int | None = None,
    ) -> dict:
        """Push a message from user_id with any content (text, photo, sticker...) as Telegram would."""
        user = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "username": username,
            "language_code": language_code,
        }
        chat_id = user_id if chat_id is None else chat_id
        chat = (
            {"id": chat_id, "first_name": first_name, "username": username, "type": "private"}
            if chat_id == user_id
            else {"id": chat_id, "title": "Test group", "type": "group"}
        )
        with self._cond:
            self._chats[chat_id] = {k: v for k, v in chat.items() if v is not None}
            user = {k: v for k, v in user.items() if v is not None}
            content = {k: v for k, v in content.items() if v is not None}
            message = self._new_message(chat_id, user, content, reply_to_message_id)
            return self.push_update({"message": message})

    def _new_message(self, chat_id: int, sender: dict, content: dict, reply_to: int | None) -> dict:
        chat = self._chats.setdefault(chat_id, {"id": chat_id, "first_name": "User", "type": "private"})
        visible = self._messages.setdefault(chat_id, {})
        if reply_to is not None and reply_to not in visible:
            raise _bad("message to be replied not found")
        message_id = self._last_id[chat_id] = self._last_id.get(chat_id, 0) + 1  # numbered per chat
        message = {"message_id": message_id, "from": sender, "chat": dict(chat), "date": int(time.time()), **content}
        if reply_to is not None:  # Telegram nests the replied-to message one level deep only
            message["reply_to_message"] = {k: v for k, v in visible[reply_to].items() if k != "reply_to_message"}
        visible[message_id] = message
        return message

    def _store_file(self, data: bytes, prefix: str, ext: str) -> dict:
        n = len(self._files) + 1
        digest = hashlib.sha1(data).hexdigest()[:16]
        info = {
            "file_id": f"{prefix[:3].upper()}{n}-{digest}",
            "file_unique_id": f"U{digest}",
            "file_size": len(data),
            "file_path": f"{prefix}/file_{n}.{ext}",
        }
        self._files[info["file_id"]] = {"data": data, "info": info}
        return info

    def _store_photo(self, data: bytes) -> list[dict]:
        sizes = []
        for width, height, jpeg in _render_photo(data):
            info = self._store_file(jpeg, "photos", "jpg")
            sizes.append(
                {k: info[k] for k in ("file_id", "file_unique_id", "file_size")} | {"width": width, "height": height}
            )
        for size in sizes:  # re-sending any size by file_id reproduces the whole photo
            self._files[size["file_id"]]["photo"] = sizes
        return sizes

    def _store_document(self, upload: UploadedFile) -> dict:
        name = upload.filename or "document"
        mime = upload.content_type
        if mime in (None, "application/octet-stream"):
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        info = self._store_file(upload.data, "documents", name.rpartition(".")[2] if "." in name else "bin")
        document = {
            "file_name": name,
            "mime_type": mime,
            **{k: info[k] for k in ("file_id", "file_unique_id", "file_size")},
        }
        self._files[info["file_id"]]["document"] = document
        return document

    def _chat_id(self, params: dict) -> int:
        if params.get("chat_id") in (None, ""):
            raise _bad("chat_id is empty")
        try:
            return int(params["chat_id"])
        except (TypeError, ValueError):
            raise _bad("chat not found") from None  # "@username" chats are not modelled

    def _input_file(self, params: dict, files: dict, key: str) -> UploadedFile | dict:
        """The upload for `key`, or the stored entry of a file_id sent again."""
        value = params.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            value, key = None, value.removeprefix("attach://")
        if key in files:
            return files[key]
        if not value:
            raise _bad(f"there is no {key} in the request")
        if value not in self._files:  # also URLs: the fake never downloads anything
            raise _bad("wrong file identifier/HTTP URL specified")
        return self._files[value]

    def _text(self, params: dict, key: str) -> str | None:
        raw = params.get(key)
        if raw is None:
            return None
        text = _render_html(str(raw)) if str(params.get("parse_mode")).lower() == "html" else str(raw)
        if key == "text" and not text.strip():
            raise _bad("message text is empty")
        if _utf16_len(text) > (4096 if key == "text" else 1024):
            raise _bad("message is too long" if key == "text" else "message caption is too long")
        return text

    def _signature(self, params: dict, key: str, text: str | None) -> tuple:
        # Same visible text, same formatted source, same keyboard => "message is not modified".
        source = params.get(key) if params.get("parse_mode") else None
        return text, source, json.dumps(params.get("reply_markup") or None)

    def _bot_message(self, params: dict, content: dict, key: str) -> dict:
        chat_id = self._chat_id(params)
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id", params.get("reply_to_message_id"))
        if reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply")):
            if reply_to not in self._messages.get(self._chat_id(params), {}):
                reply_to = None  # the replied message is gone: sent as a plain message
        if "inline_keyboard" in (params.get("reply_markup") or {}):
            content["reply_markup"] = params["reply_markup"]
        sender = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        message = self._new_message(chat_id, sender, content, reply_to)
        self._content[(chat_id, message["message_id"])] = self._signature(params, key, content.get(key))
        return message

    def _find(self, params: dict, verb: str) -> dict:
        chat_id = self._chat_id(params)
        try:
            message = self._messages.get(chat_id, {}).get(int(params.get("message_id")))
        except (TypeError, ValueError):
            raise _bad("message identifier is not specified") from None
        if message is None:
            raise _bad(f"message to {verb} not found")
        if verb == "edit" and message["from"]["id"] != self.bot_user["id"]:
            raise _bad("message can't be edited")
        return message

    def _edit(self, params: dict, message: dict, key: str, text: str | None, signature: tuple | None = None) -> dict:
        where = (message["chat"]["id"], message["message_id"])
        signature = signature or self._signature(params, key, text)
        if signature == self._content.get(where):
            raise _bad(NOT_MODIFIED)
        self._content[where] = signature
        # An edit without reply_markup removes the inline keyboard, as on the real server.
        for field, value in ((key, text), ("reply_markup", params.get("reply_markup"))):
            if value:
                message[field] = value
            else:
                message.pop(field, None)
        message["edit_date"] = int(time.time())
        return message

    # ----- Bot API methods: _m_<methodName>(params, files) -> result -----
    def _m_getMe(self, p, f):
        return self.bot_user

    def _m_deleteWebhook(self, p, f):
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_setWebhook(self, p, f):
        if not str(p.get("url", "")).startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        return True

    def _m_setMyCommands(self, p, f):
        self._commands[json.dumps([p.get("scope"), p.get("language_code")])] = p.get("commands", [])
        return True

    def _m_getMyCommands(self, p, f):
        return self._commands.get(json.dumps([p.get("scope"), p.get("language_code")]), [])

    def _m_answerCallbackQuery(self, p, f):
        return True

    def _m_sendChatAction(self, p, f):
        self._chat_id(p)
        return True

    def _m_getUpdates(self, p, f):
        offset, limit = p.get("offset"), min(int(p.get("limit") or 100), 100)
        deadline = time.monotonic() + float(p.get("timeout") or 0)
        while True:
            if offset is not None and offset < 0:  # only the last -offset updates are kept
                del self._updates[:offset]
            elif offset is not None:  # updates below offset are confirmed: forget them
                self._updates[:] = [u for u in self._updates if u["update_id"] >= offset]
            remaining = deadline - time.monotonic()
            if self._updates or self._stopping or remaining <= 0:
                return [update.get(RAW, update) for update in self._updates[:limit]]
            self._cond.wait(remaining)  # push_update() and stop() notify

    def _m_sendMessage(self, p, f):
        if p.get("text") is None:
            raise _bad("message text is empty")
        return self._bot_message(p, {"text": self._text(p, "text")}, "text")

    def _m_sendPhoto(self, p, f):
        source = self._input_file(p, f, "photo")
        if isinstance(source, UploadedFile):
            if len(source.data) > 10 * MB:
                raise _bad("file is too big")
            try:
                width, height = Image.open(io.BytesIO(source.data)).size
            except Exception:
                raise _bad("IMAGE_PROCESS_FAILED") from None
            if width + height > 10000 or max(width, height) > 20 * min(width, height):
                raise _bad("PHOTO_INVALID_DIMENSIONS")
            source = {"photo": self._store_photo(source.data)}
        if "photo" not in source:
            raise _bad("type of file mismatch")
        caption = self._text(p, "caption")
        return self._bot_message(p, {"photo": source["photo"], **({"caption": caption} if caption else {})}, "caption")

    def _m_sendDocument(self, p, f):
        source = self._input_file(p, f, "document")
        if isinstance(source, UploadedFile):
            if len(source.data) > 50 * MB:  # the real server refuses bigger uploads with a 413
                raise ApiError(413, "Request Entity Too Large")
            source = {"document": self._store_document(source)}
        if "document" not in source:
            raise _bad("type of file mismatch")
        caption = self._text(p, "caption")
        return self._bot_message(
            p, {"document": source["document"], **({"caption": caption} if caption else {})}, "caption"
        )

    def _m_editMessageText(self, p, f):
        message = self._find(p, "edit")
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        if p.get("text") is None:
            raise _bad("message text is empty")
        return self._edit(p, message, "text", self._text(p, "text"))

    def _m_editMessageCaption(self, p, f):
        message = self._find(p, "edit")
        if "text" in message:
            raise _bad("there is no caption in the message to edit")
        return self._edit(p, message, "caption", self._text(p, "caption"))

    def _m_editMessageReplyMarkup(self, p, f):
        message = self._find(p, "edit")
        key = "text" if "text" in message else "caption"
        text, source, _ = self._content.get((message["chat"]["id"], message["message_id"]), (None,) * 3)
        signature = (text, source, json.dumps(p.get("reply_markup") or None))  # only the keyboard changes
        return self._edit(p, message, key, message.get(key), signature)

    def _m_sendMediaGroup(self, p, f):
        media = p.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _bad("wrong number of media specified")  # Telegram's words for <2 or >10 items
        group_id = str(1_000_000 + len(self.calls))
        reply = {k: p[k] for k in ("chat_id", "reply_parameters", "reply_to_message_id") if k in p}
        messages = []
        kinds = {item.get("type") for item in media}
        if kinds not in ({"photo"}, {"document"}):  # documents can only be grouped with documents
            raise _bad("wrong media type combination in the album")
        for item in media:
            send = self._m_sendPhoto if item["type"] == "photo" else self._m_sendDocument
            sent = send({**reply, **item, item["type"]: item.get("media")}, f)
            sent["media_group_id"] = group_id
            messages.append(sent)
        return messages

    def _m_deleteMessage(self, p, f):
        message = self._find(p, "delete")
        del self._messages[message["chat"]["id"]][message["message_id"]]
        return True

    def _m_getFile(self, p, f):
        entry = self._files.get(p.get("file_id"))
        if entry is None:
            raise _bad("invalid file_id")
        if entry["info"]["file_size"] > 20 * MB:  # bots may only download up to 20 MB
            raise _bad("file is too big")
        return entry["info"]

    # ----- payments in Telegram Stars (https://core.telegram.org/bots/payments-stars) -----
    def _m_sendInvoice(self, p, f):
        title, description, payload = p.get("title") or "", p.get("description") or "", p.get("payload") or ""
        if not 1 <= len(title) <= 32:
            raise _bad("INVOICE_TITLE_INVALID" if title else "title is empty")
        if not 1 <= len(description) <= 255:
            raise _bad("INVOICE_DESCRIPTION_INVALID" if description else "description is empty")
        if not 1 <= len(payload.encode()) <= 128:
            raise _bad("INVOICE_PAYLOAD_INVALID")
        prices = p.get("prices")
        if p.get("currency") != "XTR":
            raise _bad("CURRENCY_INVALID")  # the fake sells digital goods only: Stars
        if p.get("provider_token"):
            raise _bad("PROVIDER_TOKEN_INVALID")  # Stars take no payment provider
        if not isinstance(prices, list) or len(prices) != 1 or not isinstance(prices[0].get("amount"), int):
            raise _bad("STARS_INVOICE_INVALID")  # exactly one price, in whole Stars
        if prices[0]["amount"] < 1:
            raise _bad("STARS_INVOICE_INVALID")
        invoice = {
            "title": title,
            "description": description,
            "start_parameter": p.get("start_parameter") or "",
            "currency": "XTR",
            "total_amount": prices[0]["amount"],
        }
        message = self._bot_message(p, {"invoice": invoice}, "invoice")
        self._invoices[(message["chat"]["id"], message["message_id"])] = payload  # not shown to users
        return message

    def _m_answerPreCheckoutQuery(self, p, f):
        query_id = p.get("pre_checkout_query_id")
        if query_id not in self._checkouts:
            raise _bad("QUERY_ID_INVALID")
        if query_id in self.checkout_answers:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if not isinstance(p.get("ok"), bool):
            raise _bad("ok is required")
        if not p["ok"] and not p.get("error_message"):
            raise _bad("ERROR_MESSAGE_EMPTY")
        self.checkout_answers[query_id] = {
            "ok": p["ok"],
            "error_message": p.get("error_message"),
            "at": time.monotonic(),
        }
        self._cond.notify_all()
        return True

    def _m_refundStarPayment(self, p, f):
        charge_id, user_id = p.get("telegram_payment_charge_id"), p.get("user_id")
        paid = next((t for t in self.star_transactions if t["id"] == charge_id and "source" in t), None)
        if paid is None or paid["source"]["user"]["id"] != user_id:
            raise _bad("CHARGE_NOT_FOUND")
        if any(t["id"] == charge_id and "receiver" in t for t in self.star_transactions):
            raise _bad("CHARGE_ALREADY_REFUNDED")
        user = paid["source"]["user"]
        receiver = {"type": "user", "transaction_type": "invoice_payment", "user": user}
        self.star_transactions.append(
            {"id": charge_id, "amount": paid["amount"], "date": int(time.time()), "receiver": receiver}
        )
        return True

    def _m_getStarTransactions(self, p, f):
        """The bot's transactions in chronological order, `limit` (1-100) from `offset`."""
        offset, limit = int(p.get("offset") or 0), int(p.get("limit") or 100)
        if not 1 <= limit <= 100:
            raise _bad("limit is invalid")
        return {"transactions": self.star_transactions[offset : offset + limit]}

    def push_pre_checkout(
        self, user_id: int, payload: str, total_amount: int, currency: str = "XTR", first_name: str = "Alice"
    ) -> str:
        """The user pressed Pay on an invoice: Telegram asks the bot to confirm; returns the query id."""
        query = {
            "id": str(uuid.uuid4().int)[:18],
            "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"},
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": payload,
        }
        with self._cond:
            self._checkouts[query["id"]] = query
        self.push_update({"pre_checkout_query": query})
        return query["id"]

    def push_successful_payment(
        self, user_id: int, payload: str, total_amount: int, charge_id: str | None = None, record: bool = True
    ) -> dict:
        """Telegram took the Stars: the service message the bot is told by (with `record`, also the
        bot's Star transaction, as Telegram keeps it). Its charge id is in message.successful_payment."""
        charge_id = charge_id or f"stxTest{uuid.uuid4().hex}"
        payment = {
            "currency": "XTR",
            "total_amount": total_amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }
        if record:
            self.record_star_payment(user_id, payload, total_amount, charge_id)
        return self.push_message(user_id, {"successful_payment": payment})

    def record_star_payment(self, user_id: int, payload: str, total_amount: int, charge_id: str) -> None:
        user = {"id": user_id, "is_bot": False, "first_name": "Alice"}
        source = {"type": "user", "transaction_type": "invoice_payment", "user": user, "invoice_payload": payload}
        with self._cond:
            self.star_transactions.append(
                {"id": charge_id, "amount": total_amount, "date": int(time.time()), "source": source}
            )

    async def pay(self, user_id: int, invoice_message_id: int, timeout: float = 10) -> dict | None:
        """What a user's Telegram app does when they pay an invoice the bot sent: ask the bot at checkout
        and, when it says yes, take the Stars and tell the bot. The successful payment, or None if refused."""
        with self._cond:
            invoice = self._messages[user_id][invoice_message_id]["invoice"]
            payload = self._invoices[(user_id, invoice_message_id)]
        query_id = self.push_pre_checkout(user_id, payload, invoice["total_amount"])
        answer = await self.wait_for(lambda tg: tg.checkout_answers.get(query_id), timeout, what="the checkout answer")
        if not answer["ok"]:
            return None
        sent = self.push_successful_payment(user_id, payload, invoice["total_amount"])
        return sent["message"]["successful_payment"]
