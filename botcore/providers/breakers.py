"""Circuit breakers: a provider that keeps failing is skipped for a while instead of costing every
user a failed call, then tried again with one trial call.

`CircuitBreaker` keeps its state in the process (the embedded default). `SharedBreaker` keeps the same
state in Redis, so that every process of the bot (web workers, Celery workers) sees a provider open
after failures any of them saw. While Redis is away it goes on with a CircuitBreaker of its own.
"""

import logging
import time
from collections.abc import Callable
from typing import Protocol

from botcore import shared

log = logging.getLogger(__name__)


class Breaker(Protocol):
    CLOSED: str
    OPEN: str
    HALF_OPEN: str
    cooldown_seconds: float
    clock: Callable[[], float]

    @property
    def state(self) -> str: ...
    @property
    def available(self) -> bool: ...
    @property
    def consecutive_failures(self) -> int: ...
    def allow(self) -> bool: ...
    def succeeded(self) -> None: ...
    def failed(self, started_at: float | None = None) -> None: ...
    def released(self) -> None: ...


class CircuitBreaker:
    """closed -> (`failures` failures in a row) -> open: calls are skipped for `cooldown_seconds`
    -> half-open: one trial call is let through -> its success closes, its failure re-opens.

    Every call allow() lets through must end in exactly one of succeeded(), failed() or released().
    The trial starts only once the calls let through before the breaker opened have all ended, so
    that while it runs, the report that comes is the trial's own (a late timeout of an older call
    cannot be taken for it, nor start a second trial).

    Plain state, no locks: it lives in one asyncio event loop (one thread), where nothing runs
    between allow() and the caller's first await, so two callers cannot both claim the trial.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"

    def __init__(
        self, failures: int = 3, cooldown_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.failures = failures
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self.consecutive_failures = 0
        self.running = 0  # calls let through that have not reported yet
        self._opened_at: float | None = None  # clock() when it last opened; None while closed
        self._last_failure_at: float | None = None  # clock() of the last failure counted

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self.clock() - self._opened_at < self.cooldown_seconds:
            return self.OPEN
        return self.HALF_OPEN

    @property
    def available(self) -> bool:
        """Whether allow() would let a call through now, without claiming anything."""
        state = self.state
        return state == self.CLOSED or (state == self.HALF_OPEN and self.running == 0)

    def allow(self) -> bool:
        """May a call go through now? In half-open, True makes that call the one trial."""
        if not self.available:
            return False
        self.running += 1
        return True

    def succeeded(self) -> None:
        self._ended()
        self.consecutive_failures = 0
        self._opened_at = None

    def failed(self, started_at: float | None = None) -> None:
        """A call that began at `started_at` (clock()) failed. Calls that were already running when
        the last counted failure came in saw the same outage: a /batch's four calls are one failure."""
        self._ended()
        if started_at is not None and self._last_failure_at is not None and started_at < self._last_failure_at:
            return
        self._last_failure_at = self.clock()
        self.consecutive_failures += 1
        # Only a success resets the count, so once open, any failure (the trial's) re-opens.
        if self.consecutive_failures >= self.failures:
            self._opened_at = self.clock()  # opens, or re-opens for another cooldown

    def released(self) -> None:
        """The call ended without telling anything about the provider (cancelled, or a bug of ours)."""
        self._ended()

    def _ended(self) -> None:
        self.running = max(0, self.running - 1)


# The state in a Redis hash: failures (in a row), last_failure_at, opened_at, and trial_until (while a
# half-open breaker's one trial call runs). Times are the callers' time.time(): the machines' clocks
# agree to well under the seconds these compare.
_ALLOW = """
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at'))
if not opened then return 1 end
local now = tonumber(ARGV[1])
if now - opened < tonumber(ARGV[2]) then return 0 end
local trial = tonumber(redis.call('HGET', KEYS[1], 'trial_until'))
if trial and trial > now then return 0 end
redis.call('HSET', KEYS[1], 'trial_until', ARGV[1] + ARGV[3])
return 1
"""
# ARGV: now, the call's start ('' if unknown), failures that open, seconds the state is kept.
_FAILED = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last_failure_at'))
if ARGV[2] ~= '' and last and tonumber(ARGV[2]) < last then return -1 end
local count = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_failure_at', ARGV[1])
if count >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'opened_at', ARGV[1])
  redis.call('HDEL', KEYS[1], 'trial_until')
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return count
"""
# Without a failure for this long, a count of failures in a row is forgotten.
KEPT_SECONDS = 24 * 3600


class SharedBreaker:
    """CircuitBreaker's states and rules, kept in Redis for every process of the bot.

    Two differences, both because processes die: no count of calls running (a dead process would
    never report its calls), so a late success of a call that began before the breaker opened closes
    it (the provider evidently works), while a late failure of one is ignored as before (it saw the
    same outage); and the half-open trial is claimed for `trial_seconds` (a call's timeout), so a
    trial whose process died, or that was cancelled, frees the slot when that time runs out.
    """

    CLOSED = CircuitBreaker.CLOSED
    OPEN = CircuitBreaker.OPEN
    HALF_OPEN = CircuitBreaker.HALF_OPEN

    def __init__(self, name: str, failures: int = 3, cooldown_seconds: float = 60.0, trial_seconds: float = 120.0):
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.key = shared.key("breaker", name)
        self.failures, self.cooldown_seconds, self.trial_seconds = failures, cooldown_seconds, trial_seconds
        self.clock = time.time
        self.local = CircuitBreaker(failures, cooldown_seconds, time.time)  # while Redis is away

    def _read(self) -> dict[str, float] | None:
        client = shared.sync_client()
        assert client is not None, "a shared breaker needs CACHE_URL to name a Redis"
        try:
            fields = client.hgetall(self.key)
        except shared.DOWN as exc:
            shared.warn_down("the image providers' circuit breakers", exc)
            return None
        return {str(name): float(value) for name, value in fields.items()}

    def _run(self, lua: str, *args: float | str) -> int | None:
        client = shared.sync_client()
        assert client is not None, "a shared breaker needs CACHE_URL to name a Redis"
        try:
            return int(client.eval(lua, 1, self.key, *args))
        except shared.DOWN as exc:
            shared.warn_down("the image providers' circuit breakers", exc)
            return None

    @staticmethod
    def _state_of(fields: dict[str, float], now: float, cooldown: float) -> str:
        if "opened_at" not in fields:
            return CircuitBreaker.CLOSED
        return CircuitBreaker.OPEN if now - fields["opened_at"] < cooldown else CircuitBreaker.HALF_OPEN

    @property
    def state(self) -> str:
        fields = self._read()
        if fields is None:
            return self.local.state
        return self._state_of(fields, self.clock(), self.cooldown_seconds)

    @property
    def available(self) -> bool:
        fields = self._read()
        if fields is None:
            return self.local.available
        now = self.clock()
        state = self._state_of(fields, now, self.cooldown_seconds)
        return state == self.CLOSED or (state == self.HALF_OPEN and fields.get("trial_until", 0) <= now)

    @property
    def consecutive_failures(self) -> int:
        fields = self._read()
        return self.local.consecutive_failures if fields is None else int(fields.get("failures", 0))

    def allow(self) -> bool:
        allowed = self._run(_ALLOW, self.clock(), self.cooldown_seconds, self.trial_seconds)
        return self.local.allow() if allowed is None else bool(allowed)

    def succeeded(self) -> None:
        client = shared.sync_client()
        assert client is not None, "a shared breaker needs CACHE_URL to name a Redis"
        try:
            client.delete(self.key)
        except shared.DOWN as exc:
            shared.warn_down("the image providers' circuit breakers", exc)
            self.local.succeeded()

    def failed(self, started_at: float | None = None) -> None:
        args = (self.clock(), "" if started_at is None else started_at, self.failures, KEPT_SECONDS)
        if self._run(_FAILED, *args) is None:
            self.local.failed(started_at)

    def released(self) -> None:
        """Nothing to undo: a trial's claim runs out by itself (see the class)."""
