"""Several image providers tried in order, each behind a circuit breaker.

The chain is itself a provider. An outage of one provider (rate limited, unavailable, timed out,
or an operator problem such as a revoked key) moves the request on to the next one, and after a
few outages in a row that provider is skipped for a while instead of costing every user a failed
call. An answer about the request itself (a safety refusal, a malformed request, no image) is the
user's answer: it is raised at once, and it says the provider is up.
"""

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable

from .base import ImageRequest, ImageResult, Provider, ProviderError, with_retries

log = logging.getLogger(__name__)

# The provider answered; these are about the request, so another provider would not do better.
REQUEST_ERRORS = frozenset(
    {
        ProviderError.SAFETY,
        ProviderError.BAD_REQUEST,
        ProviderError.NO_IMAGE,
        ProviderError.INCOMPLETE,
        ProviderError.LANGUAGE,
    }
)
# Everything else (RATE_LIMITED, UNAVAILABLE, TIMEOUT, OPERATOR, and any code added later) is an
# outage from the user's point of view: it counts against the breaker and fails over.


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


class ProviderChain:
    """A provider that tries `providers` in order, skipping those whose breaker is open.

    Only the last provider still available retries transient errors (with_retries); the ones
    before it get a single attempt, so that failing over is quick. Give the providers themselves
    no retries of their own (GeminiProvider(max_retries=0)), or they multiply.

    `breakers` (name -> CircuitBreaker) may be passed in to share breaker state between chains,
    e.g. a chain built per job; missing entries are created from the breaker_* arguments.
    """

    name = "chain"

    def __init__(
        self,
        providers: Iterable[Provider],
        *,
        breaker_failures: int = 3,
        breaker_cooldown_seconds: float = 60.0,
        max_retries: int = 2,
        retry_base_delay: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        breakers: dict[str, CircuitBreaker] | None = None,
    ) -> None:
        self.providers = list(providers)
        if not self.providers:
            raise ValueError("a provider chain needs at least one provider")
        names = [provider.name for provider in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be distinct, got {names}")
        self.model = self.providers[0].model
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.breakers = breakers if breakers is not None else {}
        for name in names:
            if name not in self.breakers:
                self.breakers[name] = CircuitBreaker(breaker_failures, breaker_cooldown_seconds, clock)

    async def generate(self, request: ImageRequest) -> ImageResult:
        """The first provider's image; it carries the errors of the providers passed over, so an
        operator problem of one is still told when another served."""
        passed_over: list[ProviderError] = []
        for index, provider in enumerate(self.providers):
            breaker = self.breakers[provider.name]
            if not breaker.allow():
                log.debug("image provider %s skipped: circuit %s", provider.name, breaker.state)
                continue
            later = self._next_available(index)
            started = breaker.clock()
            try:
                if later is None:
                    result = await with_retries(
                        functools.partial(provider.generate, request),
                        max_retries=self.max_retries,
                        base_delay=self.retry_base_delay,
                    )
                else:
                    result = await provider.generate(request)
            except ProviderError as exc:
                if exc.code in REQUEST_ERRORS:
                    breaker.succeeded()  # it answered: the provider is up
                    raise
                was = breaker.state
                breaker.failed(started)
                passed_over.append(exc)
                if was != breaker.OPEN and breaker.state != breaker.CLOSED:
                    log.warning(
                        "image provider %s: circuit opened for %.0fs after %d failures in a row",
                        provider.name,
                        breaker.cooldown_seconds,
                        breaker.consecutive_failures,
                    )
                # Only the code: details may quote a relay's answer, and a key never belongs in a log.
                later = self._next_available(index)
                if later is None:
                    log.warning("image provider %s failed (%s); no provider left", provider.name, exc.code)
                else:
                    log.warning("image provider %s failed (%s); failing over to %s", provider.name, exc.code, later)
                continue
            except BaseException:
                breaker.released()  # cancelled, or not a provider error: no verdict on the provider
                raise
            breaker.succeeded()
            return dataclasses.replace(result, passed_over=tuple(passed_over)) if passed_over else result
        if passed_over:
            raise passed_over[-1]
        raise ProviderError(ProviderError.UNAVAILABLE, "every image provider is unavailable")

    def _next_available(self, index: int) -> str | None:
        """The name of the first provider after `index` whose breaker would let a call through, or None."""
        for provider in self.providers[index + 1 :]:
            if self.breakers[provider.name].available:
                return provider.name
        return None
