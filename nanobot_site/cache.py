"""Django's Redis cache, for a cache that only saves work: while its server is down, reads miss
(callers fall back to the database), writes are skipped, and the operator is warned at most once a
minute per process rather than every request failing.

Django's backend has no IGNORE_EXCEPTIONS; django-redis has, but it swaps in its own client and
logs every ignored error. This keeps Django's client and catches only "can't reach the server".
"""

import logging
import math
import threading
import time
from contextlib import contextmanager

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from redis.exceptions import ConnectionError, TimeoutError

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60

# Django makes a cache object per thread: what is said, and when, is per process.
_warning_lock = threading.Lock()
_warned_at = -math.inf


@contextmanager
def _unless_down():
    global _warned_at
    try:
        yield
    except (ConnectionError, TimeoutError) as exc:
        with _warning_lock:
            now = time.monotonic()
            if now - _warned_at < WARN_EVERY_SECONDS:
                return
            _warned_at = now
        log.warning("The cache server can't be reached (%s); going on without it", exc)


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        # add() means "only the first does it" (admin alerts once per ten minutes): while the server
        # is down it keeps to this process's memory, so alerts still go out, each process throttled.
        self._while_down = LocMemCache("nanobot-redis-down", {"TIMEOUT": self.default_timeout})

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        with _unless_down():
            return super().add(key, value, timeout, version)
        return self._while_down.add(key, value, timeout, version)

    def get(self, key, default=None, version=None):
        with _unless_down():
            return super().get(key, default, version)
        return default

    def get_many(self, keys, version=None):
        with _unless_down():
            return super().get_many(keys, version)
        return {}

    def has_key(self, key, version=None):
        with _unless_down():
            return super().has_key(key, version)
        return False

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        with _unless_down():
            super().set(key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        with _unless_down():
            return super().set_many(data, timeout, version)
        return list(data)  # the keys not stored

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        with _unless_down():
            return super().touch(key, timeout, version)
        return False

    def delete(self, key, version=None):
        with _unless_down():
            return super().delete(key, version)
        return False

    def delete_many(self, keys, version=None):
        with _unless_down():
            super().delete_many(keys, version)

    def clear(self):
        self._while_down.clear()
        with _unless_down():
            super().clear()
