"""Every Bot API call that reaches a chat takes its turn here: results first, paced under Telegram's limits.

Telegram allows a bot about 30 messages a second overall, about one a second in a private chat (with a
short burst) and 20 a minute in a group; beyond that it answers 429 and the chat waits a second or more.
PTB hands every call of an ExtBot to its rate limiter (`process_request`), so this is the one place
that decides what goes out when:

- a call waits for its turn by priority (`Priority`), then by arrival, and goes out when both the
  bot's and its chat's budgets allow (token buckets, kept a little under Telegram's own);
- a status message is worth sending only before its chat hears anything else: once a result or an
  answer goes to that chat, the status messages still waiting there are dropped (`Dropped`), and a
  newer edit of the same status replaces one still waiting;
- a chat action is sent only when nothing waits and the budget has room, else skipped (it is a hint);
- a 429 that comes anyway holds back its chat, or the whole bot when the chat was quiet, for the time
  Telegram asks, and the call takes its turn again.

Calls that don't add to a chat (getFile, deleteMessage, answerCallbackQuery, getUpdates...) go at once.
The buckets live in this process; the scale-out issue can keep the same `Budget` interface in Redis.
"""

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from django.conf import settings
from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)


class Priority(IntEnum):
    RESULT = 0  # the images people wait for
    ANSWER = 1  # replies to commands, refusals, failures
    STATUS = 2  # "working on it" messages and their edits: dropped once their chat hears anything else
    ACTION = 3  # "uploading a photo…": sent only when nothing waits


# Calls that add a message to a chat or change one: Telegram counts them against its limits.
PACED = {
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "sendAnimation",
    "sendVideo",
    "sendAudio",
    "sendVoice",
    "sendSticker",
    "sendInvoice",
    "copyMessage",
    "forwardMessage",
    "editMessageText",
    "editMessageCaption",
    "editMessageMedia",
    "editMessageReplyMarkup",
}
RESULT_METHODS = {"sendPhoto", "sendDocument", "sendMediaGroup"}
CHAT_ACTION = "sendChatAction"
# A chat action needs this share of the bot's budget spare: it must never delay a message.
ACTION_HEADROOM = 0.5


class Dropped(TelegramError):
    """A status message not sent: its chat heard something newer first."""

    def __init__(self) -> None:
        super().__init__("not sent: superseded by a newer message to the chat")


class Bucket:
    """`rate` calls a second, up to `burst` at once; starts full."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, burst, time.monotonic()
        self.held_until = 0.0  # a 429's retry_after

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a call may go; 0 when one may go now."""
        self._refill(now)
        return max(self.held_until - now, (1 - self.tokens) / self.rate, 0.0)

    def share(self, now: float) -> float:
        self._refill(now)
        return self.tokens / self.burst if now >= self.held_until else 0.0

    def take(self) -> None:
        self.tokens -= 1

    def idle(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst and now >= self.held_until


@dataclass(order=True)
class _Turn:
    priority: int
    seq: int
    chat: Any = field(compare=False)
    key: tuple | None = field(compare=False)  # a status edit's message: a newer edit replaces it
    granted: asyncio.Future = field(compare=False)


def _chat_of(data: dict[str, Any]) -> int | str | None:
    chat = data.get("chat_id")
    return chat if isinstance(chat, int | str) else None


class Outbound(BaseRateLimiter[int]):
    """PTB's rate limiter for our bots: `rate_limit_args` is a Priority (by default by the method)."""

    def __init__(
        self,
        *,
        per_second: float = 30,
        burst: float = 10,
        per_chat_second: float = 1.0,
        chat_burst: float = 3,
        group_per_minute: float = 20,
        retries: int = 3,
    ) -> None:
        self.bot_budget = Bucket(per_second, burst)
        self.per_chat = (per_chat_second, chat_burst)
        self.per_group = (group_per_minute / 60, min(chat_burst, 3))
        self.retries = retries
        self.chats: dict[Any, Bucket] = {}
        self.waiting: list[_Turn] = []
        self._seq = itertools.count()
        self._arrived: asyncio.Event | None = None
        self._pump: asyncio.Task | None = None
        self.rate_limited = 0  # 429s that came anyway

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        if self._pump is not None and not self._pump.get_loop().is_closed():
            self._pump.cancel()
        self._pump = None
        for turn in self.waiting:
            if not turn.granted.done():
                turn.granted.set_exception(Dropped())
        self.waiting.clear()

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        if endpoint == CHAT_ACTION:
            return await self._chat_action(callback, args, kwargs, data)
        if endpoint not in PACED:
            return await callback(*args, **kwargs)
        priority = Priority(rate_limit_args) if rate_limit_args is not None else _default_priority(endpoint)
        chat = _chat_of(data)
        key = (chat, data.get("message_id")) if priority == Priority.STATUS and endpoint.startswith("edit") else None
        seq = next(self._seq)
        for attempt in range(self.retries + 1):
            await self._turn(priority, seq, chat, key)
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.rate_limited += 1
                wait = retry_seconds(exc.retry_after)
                self._hold(chat, wait)
                if attempt == self.retries:
                    raise
                log.info("Telegram asked to wait %.0f s (%s to %s); trying again", wait, endpoint, chat)
                continue
            return result
        raise AssertionError("unreachable")

    async def _chat_action(self, callback, args, kwargs, data):
        now = time.monotonic()
        chat = self._bucket(_chat_of(data))
        if self.waiting or self.bot_budget.share(now) < ACTION_HEADROOM or (chat is not None and chat.wait(now)):
            return True  # what Telegram answers to a chat action
        self.bot_budget.take()
        return await callback(*args, **kwargs)

    async def _turn(self, priority: int, seq: int, chat: Any, key: tuple | None) -> None:
        loop = asyncio.get_running_loop()
        if key is not None:  # only the newest edit of a status message is worth sending
            for older in [turn for turn in self.waiting if turn.key == key]:
                self._drop(older)
        turn = _Turn(priority, seq, chat, key, loop.create_future())
        self.waiting.append(turn)
        self._wake()
        try:
            await turn.granted
        except asyncio.CancelledError:
            if turn in self.waiting:
                self.waiting.remove(turn)
            raise

    def _wake(self) -> None:
        loop = asyncio.get_running_loop()
        # A Celery worker runs each job in a loop of its own: the pump belongs to the loop it serves.
        if self._pump is None or self._pump.done() or self._pump.get_loop() is not loop:
            self._arrived = asyncio.Event()
            self._pump = loop.create_task(self._grant_forever(), name="outbound")
        assert self._arrived is not None
        self._arrived.set()

    async def _grant_forever(self) -> None:
        assert self._arrived is not None
        while True:
            self._arrived.clear()
            wait = self._grant_ready()
            if wait is None:
                await self._arrived.wait()
                continue
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except TimeoutError:
                pass

    def _grant_ready(self) -> float | None:
        """Let every call go whose turn it is and whose budgets allow it now; the seconds until the
        next one may go, or None when none waits."""
        while self.waiting:
            now = time.monotonic()
            if wait := self.bot_budget.wait(now):
                return wait
            soonest = None
            for turn in sorted(self.waiting):
                bucket = self._bucket(turn.chat)
                chat_wait = bucket.wait(now) if bucket is not None else 0.0
                if chat_wait == 0.0:
                    self._grant(turn, bucket)
                    break
                soonest = chat_wait if soonest is None else min(soonest, chat_wait)
            else:
                return soonest
        self._forget_idle_chats()
        return None

    def _grant(self, turn: _Turn, bucket: Bucket | None) -> None:
        self.waiting.remove(turn)
        self.bot_budget.take()
        if bucket is not None:
            bucket.take()
        if turn.priority < Priority.STATUS:  # the chat hears something newer: its waiting statuses are stale
            self.withdraw_statuses(turn.chat)
        if not turn.granted.done():
            turn.granted.set_result(None)

    def _statuses_to(self, chat: Any) -> list[_Turn]:
        return [turn for turn in self.waiting if turn.chat == chat and turn.priority == Priority.STATUS]

    def status_waiting(self, chat: Any) -> bool:
        """Whether a status message to `chat` still waits for its turn (others go first)."""
        return bool(self._statuses_to(chat))

    def withdraw_statuses(self, chat: Any) -> None:
        """The status messages to `chat` still waiting are not sent (they end in Dropped)."""
        for stale in self._statuses_to(chat):
            self._drop(stale)

    def _drop(self, turn: _Turn) -> None:
        self.waiting.remove(turn)
        if not turn.granted.done():
            turn.granted.set_exception(Dropped())

    def _bucket(self, chat: Any) -> Bucket | None:
        if chat is None:
            return None
        bucket = self.chats.get(chat)
        if bucket is None:
            group = isinstance(chat, str) or chat < 0  # groups, supergroups and channels
            bucket = self.chats[chat] = Bucket(*(self.per_group if group else self.per_chat))
        return bucket

    def _hold(self, chat: Any, seconds: float) -> None:
        """Honour a 429 for its scope: the chat, when other calls to it were still counted against its
        budget (we were writing to it just now); else the whole bot."""
        now = time.monotonic()
        bucket = self._bucket(chat)
        if bucket is not None:
            bucket.wait(now)  # refilled to now
        pressed = bucket is not None and bucket.burst - bucket.tokens > 1
        scope = bucket if pressed and bucket is not None else self.bot_budget
        scope.held_until = max(scope.held_until, now + seconds)

    def _forget_idle_chats(self) -> None:
        if len(self.chats) > 10_000:
            now = time.monotonic()
            self.chats = {chat: bucket for chat, bucket in self.chats.items() if not bucket.idle(now)}


def for_settings() -> Outbound:
    """The limiter for a Bot of ours, with Telegram's limits as settings.py states them."""
    return Outbound(
        per_second=settings.TELEGRAM_MESSAGES_PER_SECOND,
        per_chat_second=settings.TELEGRAM_CHAT_MESSAGES_PER_SECOND,
        group_per_minute=settings.TELEGRAM_GROUP_MESSAGES_PER_MINUTE,
    )


def _default_priority(endpoint: str) -> Priority:
    return Priority.RESULT if endpoint in RESULT_METHODS else Priority.ANSWER


def retry_seconds(retry_after: Any) -> float:
    """A RetryAfter's wait in seconds: PTB gives an int, or a timedelta with PTB_TIMEDELTA set."""
    return retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else float(retry_after)
