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
from .breakers import Breaker, CircuitBreaker

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


class ProviderChain:
    """A provider that tries `providers` in order, skipping those whose breaker is open.

    Only the last provider still available retries transient errors (with_retries); the ones
    before it get a single attempt, so that failing over is quick. Give the providers themselves
    no retries of their own (GeminiProvider(max_retries=0)), or they multiply.

    `breakers` (name -> CircuitBreaker or SharedBreaker) may be passed in to share breaker state
    between chains, e.g. a chain built per job; missing entries are created from the breaker_* arguments.
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
        breakers: dict[str, Breaker] | None = None,
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
