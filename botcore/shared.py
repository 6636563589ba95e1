"""Where what holds per bot, not per process, is kept: Telegram's send budgets, albums being gathered,
the providers' circuit breakers.

With CACHE_URL pointing at Redis, every process (web workers, Celery workers, on any machine) shares
them there; with the embedded default (no Redis) they live in the one process that serves the bot.
While Redis can't be reached, each process goes on with its own state rather than failing users, and
says so at most once a minute.
"""

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Awaitable
from typing import TypeVar

import redis
import redis.asyncio
from django.conf import settings

log = logging.getLogger(__name__)

# Redis answers on loopback or the LAN in a millisecond; past this it is as good as down.
SOCKET_SECONDS = 0.5
WARN_EVERY_SECONDS = 60
# What the clients raise when the server can't be reached or fails (OSError: e.g. a refused connection).
DOWN = (redis.exceptions.RedisError, OSError)

_warning_lock = threading.Lock()
_warned_at = -math.inf
# (url, client): a test, or settings reloaded, may point CACHE_URL elsewhere.
_sync_client: tuple[str, redis.Redis] | None = None
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, redis.asyncio.Redis]]" = (
    weakref.WeakKeyDictionary()
)


def redis_url() -> str | None:
    """The Redis that CACHE_URL names, or None (the embedded default)."""
    cache = settings.CACHES["default"]
    if not cache["BACKEND"].endswith(".RedisCache"):
        return None
    location = cache["LOCATION"]
    return location[0] if isinstance(location, list | tuple) else location


def key(*parts: object) -> str:
    """A key of this bot's (two bots may share one Redis): nanobot:<bot id>:<parts>."""
    bot_id = settings.TELEGRAM_BOT_TOKEN.split(":", 1)[0]
    return ":".join(["nanobot", bot_id, *map(str, parts)])


def sync_client() -> redis.Redis | None:
    """A client for code that isn't async, answering str (thread-safe; redis-py renews its pool after a fork)."""
    global _sync_client
    url = redis_url()
    if url is None:
        return None
    if _sync_client is None or _sync_client[0] != url:
        client = redis.Redis.from_url(
            url, socket_timeout=SOCKET_SECONDS, socket_connect_timeout=SOCKET_SECONDS, decode_responses=True
        )
        _sync_client = (url, client)
    return _sync_client[1]


def async_client() -> redis.asyncio.Redis | None:
    """A client for the running event loop: an asyncio client's connections belong to one loop, and a
    Celery worker runs each job in a loop of its own (closed with it: `close_async_client`)."""
    url = redis_url()
    if url is None:
        return None
    loop = asyncio.get_running_loop()
    kept = _async_clients.get(loop)
    if kept is None or kept[0] != url:
        client = redis.asyncio.Redis.from_url(url, socket_timeout=SOCKET_SECONDS, socket_connect_timeout=SOCKET_SECONDS)
        _async_clients[loop] = kept = (url, client)
    return kept[1]


async def close_async_client() -> None:
    """Close the running loop's client, if it made one (before the loop ends)."""
    kept = _async_clients.pop(asyncio.get_running_loop(), None)
    if kept is not None:
        await kept[1].aclose()


T = TypeVar("T")


async def answer(command: Awaitable[T]) -> T:
    """The reply to a Redis command, without losing a cancellation.

    redis-py's asyncio client finishes a command whose task was cancelled during it (so that the reply
    doesn't reach the next command on the connection) and may then return the reply as if nothing had
    happened: the task would go on, and whoever cancelled it would wait for it forever.
    """
    reply = await command
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    return reply


def warn_down(what: str, exc: BaseException) -> None:
    """Say that `what` goes on without Redis, at most once a minute in this process."""
    global _warned_at
    with _warning_lock:
        now = time.monotonic()
        if now - _warned_at < WARN_EVERY_SECONDS:
            return
        _warned_at = now
    log.warning("Redis failed (%s: %s); %s goes on without it", type(exc).__name__, exc, what)
