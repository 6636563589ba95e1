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

The budgets are the bot's, not a process's: with Redis (CACHE_URL) every process that sends for the bot
(web workers, Celery workers) draws from the same buckets there (`SharedBudget`), so two processes don't
send twice Telegram's limit. The order of the calls waiting is each process's own; across processes a
status message leaves a few of the bot's tokens spare (STATUS_RESERVE) for the results others may be
about to send. Without Redis, or while it is away, the buckets live in this process (`LocalBudget`).
"""

import asyncio
import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from django.conf import settings
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from botcore import metrics, shared

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
# Across processes, a status message waits until this many of the bot's tokens are spare besides its own.
STATUS_RESERVE = 2
# The calls waiting that one look at the budgets considers, in their order.
CANDIDATES = 32


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


Candidate = tuple[Any, int]  # (chat, priority) of a call waiting for its turn


class LocalBudget:
    """The bot's and each chat's buckets, in this process."""

    def __init__(self, bot: tuple[float, float], chat: tuple[float, float], group: tuple[float, float]) -> None:
        self.bot = Bucket(*bot)
        self.per_chat, self.per_group = chat, group
        self.chats: dict[Any, Bucket] = {}

    async def grant(self, candidates: list[Candidate]) -> tuple[int | None, float]:
        """Charge the first candidate whose chat and the bot have a token now: (its index, 0); else
        (None, the seconds until one may have)."""
        now = time.monotonic()
        if wait := self.bot.wait(now):
            return None, wait
        soonest = math.inf
        for index, (chat, _priority) in enumerate(candidates):
            bucket = self._bucket(chat)
            chat_wait = bucket.wait(now) if bucket is not None else 0.0
            if chat_wait == 0.0:
                self.bot.take()
                if bucket is not None:
                    bucket.take()
                return index, 0.0
            soonest = min(soonest, chat_wait)
        return None, soonest

    async def chat_action(self, chat: Any) -> bool:
        """Charge a chat action if the bot has room to spare and its chat a token now."""
        now = time.monotonic()
        bucket = self._bucket(chat)
        if self.bot.share(now) < ACTION_HEADROOM or (bucket is not None and bucket.wait(now)):
            return False
        self.bot.take()
        return True

    async def hold(self, chat: Any, seconds: float) -> None:
        """Honour a 429 for its scope: the chat, when other calls to it were still counted against its
        budget (we were writing to it just now); else the whole bot."""
        now = time.monotonic()
        bucket = self._bucket(chat)
        if bucket is not None:
            bucket.wait(now)  # refilled to now
        pressed = bucket is not None and bucket.burst - bucket.tokens > 1
        scope = bucket if pressed and bucket is not None else self.bot
        scope.held_until = max(scope.held_until, now + seconds)

    def forget_idle_chats(self) -> None:
        if len(self.chats) > 10_000:
            now = time.monotonic()
            self.chats = {chat: bucket for chat, bucket in self.chats.items() if not bucket.idle(now)}

    def _bucket(self, chat: Any) -> Bucket | None:
        if chat is None:
            return None
        bucket = self.chats.get(chat)
        if bucket is None:
            bucket = self.chats[chat] = Bucket(*(self.per_group if _is_group(chat) else self.per_chat))
        return bucket


def _is_group(chat: Any) -> bool:
    return isinstance(chat, str) or chat < 0  # groups, supergroups and channels


# The same buckets in Redis: a hash of tokens, stamp (Redis's clock, the same for every machine) and
# held (a 429's end), refilled when read and gone once full again.
_BUCKETS_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

local function load(key, rate, burst)
  local state = redis.call('HMGET', key, 'tokens', 'stamp', 'held')
  local tokens = tonumber(state[1]) or burst
  local stamp = tonumber(state[2]) or now
  return math.min(burst, tokens + math.max(0, now - stamp) * rate), tonumber(state[3]) or 0
end

local function wait_for(tokens, held, rate, need)
  return math.max(held - now, (need - tokens) / rate, 0)
end

local function save(key, tokens, held, rate, burst)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now), 'held', tostring(held))
  redis.call('PEXPIRE', key, math.ceil((math.max(held - now, 0) + burst / rate) * 1000) + 1000)
end
"""

# KEYS: the bot's bucket, then each candidate's chat bucket (the bot's again for a call without a chat).
# ARGV: the bot's rate and burst, then per candidate its chat's rate (0: none), burst and reserve.
_GRANT = (
    _BUCKETS_LUA
    + """
local bot_rate, bot_burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local bot_tokens, bot_held = load(KEYS[1], bot_rate, bot_burst)
local soonest = -1
for i = 1, #KEYS - 1 do
  local rate, burst, reserve = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local wait = wait_for(bot_tokens, bot_held, bot_rate, 1 + reserve)
  local chat_tokens, chat_held
  if rate > 0 then
    chat_tokens, chat_held = load(KEYS[i + 1], rate, burst)
    wait = math.max(wait, wait_for(chat_tokens, chat_held, rate, 1))
  end
  if wait == 0 then
    save(KEYS[1], bot_tokens - 1, bot_held, bot_rate, bot_burst)
    if rate > 0 then save(KEYS[i + 1], chat_tokens - 1, chat_held, rate, burst) end
    return {i, '0'}
  end
  if soonest < 0 or wait < soonest then soonest = wait end
end
return {0, tostring(soonest)}
"""
)

# KEYS: the bot's bucket, the chat's. ARGV: bot rate, burst, headroom, chat rate (0: none), burst.
_CHAT_ACTION = (
    _BUCKETS_LUA
    + """
local bot_rate, bot_burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local bot_tokens, bot_held = load(KEYS[1], bot_rate, bot_burst)
if now < bot_held or bot_tokens / bot_burst < tonumber(ARGV[3]) then return 0 end
local rate, burst = tonumber(ARGV[4]), tonumber(ARGV[5])
if rate > 0 then
  local tokens, held = load(KEYS[2], rate, burst)
  if wait_for(tokens, held, rate, 1) > 0 then return 0 end
end
save(KEYS[1], bot_tokens - 1, bot_held, bot_rate, bot_burst)
return 1
"""
)

# KEYS: the bot's bucket, the chat's. ARGV: seconds, bot rate, burst, chat rate (0: none), burst.
_HOLD = (
    _BUCKETS_LUA
    + """
local seconds = tonumber(ARGV[1])
local key, rate, burst = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local chat_rate, chat_burst = tonumber(ARGV[4]), tonumber(ARGV[5])
if chat_rate > 0 then
  local tokens = load(KEYS[2], chat_rate, chat_burst)
  if chat_burst - tokens > 1 then key, rate, burst = KEYS[2], chat_rate, chat_burst end
end
local tokens, held = load(key, rate, burst)
save(key, tokens, math.max(held, now + seconds), rate, burst)
return 1
"""
)


class SharedBudget:
    """The same budgets as LocalBudget, kept in Redis for every process of the bot; `fallback` while
    Redis can't be reached."""

    def __init__(self, bot: tuple[float, float], chat: tuple[float, float], group: tuple[float, float]) -> None:
        self.bot, self.per_chat, self.per_group = bot, chat, group
        self.fallback = LocalBudget(bot, chat, group)
        self._scripts: tuple[Redis, dict[str, AsyncScript]] | None = None

    def _script(self, name: str) -> AsyncScript:
        client = shared.async_client()
        assert client is not None, "a shared budget needs CACHE_URL to name a Redis"
        if self._scripts is None or self._scripts[0] is not client:  # a Celery job's loop has its own client
            lua = {"grant": _GRANT, "chat_action": _CHAT_ACTION, "hold": _HOLD}
            self._scripts = (client, {each: client.register_script(code) for each, code in lua.items()})
        return self._scripts[1][name]

    def _chat(self, chat: Any) -> tuple[str, float, float]:
        if chat is None:
            return shared.key("sends"), 0, 0
        return (shared.key("sends", chat), *(self.per_group if _is_group(chat) else self.per_chat))

    async def grant(self, candidates: list[Candidate]) -> tuple[int | None, float]:
        keys, args = [shared.key("sends")], [*self.bot]
        for chat, priority in candidates:
            key, rate, burst = self._chat(chat)
            keys.append(key)
            args += [rate, burst, STATUS_RESERVE if priority == Priority.STATUS else 0]
        try:
            position, wait = await shared.answer(self._script("grant")(keys, args))
        except shared.DOWN as exc:
            shared.warn_down("pacing Telegram sends", exc)
            return await self.fallback.grant(candidates)
        return (position - 1, 0.0) if position else (None, float(wait))

    async def chat_action(self, chat: Any) -> bool:
        key, rate, burst = self._chat(chat)
        try:
            args = [*self.bot, ACTION_HEADROOM, rate, burst]
            return bool(await shared.answer(self._script("chat_action")([shared.key("sends"), key], args)))
        except shared.DOWN as exc:
            shared.warn_down("pacing Telegram sends", exc)
            return await self.fallback.chat_action(chat)

    async def hold(self, chat: Any, seconds: float) -> None:
        key, rate, burst = self._chat(chat)
        try:
            await shared.answer(self._script("hold")([shared.key("sends"), key], [seconds, *self.bot, rate, burst]))
        except shared.DOWN as exc:
            shared.warn_down("pacing Telegram sends", exc)
            await self.fallback.hold(chat, seconds)

    def forget_idle_chats(self) -> None:
        self.fallback.forget_idle_chats()  # Redis forgets idle buckets itself (they expire)


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
        shared_budget: bool = False,
    ) -> None:
        limits = ((per_second, burst), (per_chat_second, chat_burst), (group_per_minute / 60, min(chat_burst, 3)))
        in_redis = shared_budget and shared.redis_url() is not None
        self.budget: LocalBudget | SharedBudget = SharedBudget(*limits) if in_redis else LocalBudget(*limits)
        self.retries = retries
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
        if isinstance(self.budget, SharedBudget):
            await shared.close_async_client()

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
                metrics.telegram_429(endpoint)
                wait = retry_seconds(exc.retry_after)
                await self.budget.hold(chat, wait)
                if attempt == self.retries:
                    raise
                log.info("Telegram asked to wait %.0f s (%s to %s); trying again", wait, endpoint, chat)
                continue
            return result
        raise AssertionError("unreachable")

    async def _chat_action(self, callback, args, kwargs, data):
        if self.waiting or not await self.budget.chat_action(_chat_of(data)):
            return True  # what Telegram answers to a chat action
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
            wait = await self._grant_ready()
            if wait is None:
                await self._arrived.wait()
                continue
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except TimeoutError:
                pass

    async def _grant_ready(self) -> float | None:
        """Let every call go whose turn it is and whose budgets allow it now; the seconds until the
        next one may go, or None when none waits."""
        while self.waiting:
            turns = sorted(self.waiting)[:CANDIDATES]
            index, wait = await self.budget.grant([(turn.chat, turn.priority) for turn in turns])
            if index is None:
                return wait
            if turns[index] in self.waiting:  # not withdrawn or cancelled while Redis answered
                self._grant(turns[index])
        self.budget.forget_idle_chats()
        return None

    def _grant(self, turn: _Turn) -> None:
        self.waiting.remove(turn)
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


def for_settings() -> Outbound:
    """The limiter for a Bot of ours, with Telegram's limits as settings.py states them."""
    return Outbound(
        per_second=settings.TELEGRAM_MESSAGES_PER_SECOND,
        per_chat_second=settings.TELEGRAM_CHAT_MESSAGES_PER_SECOND,
        group_per_minute=settings.TELEGRAM_GROUP_MESSAGES_PER_MINUTE,
        shared_budget=True,
    )


def _default_priority(endpoint: str) -> Priority:
    return Priority.RESULT if endpoint in RESULT_METHODS else Priority.ANSWER


def retry_seconds(retry_after: Any) -> float:
    """A RetryAfter's wait in seconds: PTB gives an int, or a timedelta with PTB_TIMEDELTA set."""
    return retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else float(retry_after)
