"""Two image providers in a chain: failover on outages, none on answers about the request,
and a circuit breaker that stops calling a provider that keeps failing, then tries it again.

The providers are real GeminiProviders talking to two fake Gemini servers."""

import asyncio
import logging
import time

import httpx
import pytest

from botcore.providers.base import ImageRequest, ProviderError
from botcore.providers.chain import CircuitBreaker, ProviderChain
from botcore.providers.gemini import GeminiProvider
from tests.fakes import FakeGemini

pytestmark = pytest.mark.asyncio

MODEL = "gemini-3-pro-image-preview"
REQUEST = ImageRequest(prompt="a lighthouse at dusk", resolution="1K", aspect_ratio="1:1")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def primary():
    with FakeGemini(api_key="primary-key") as fake:
        yield fake


@pytest.fixture
def backup():
    with FakeGemini(api_key="backup-key") as fake:
        yield fake


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_chain(client, primary, backup, clock):
    """A chain of "primary" then "backup"; retries without waiting, breakers on the fake clock."""

    def make(*, primary_key=None, primary_timeout=10, **options):
        providers = []
        for name, fake, key, timeout in (
            ("primary", primary, primary_key or primary.api_key, primary_timeout),
            ("backup", backup, backup.api_key, 10),
        ):
            provider = GeminiProvider(
                client=client, api_key=key, base_url=fake.base_url, model=MODEL, timeout=timeout, max_retries=0
            )
            provider.name = name
            providers.append(provider)
        options = {"max_retries": 2, "retry_base_delay": 0, "clock": clock, **options}
        return ProviderChain(providers, **options)

    return make


async def generate(chain):
    result = await chain.generate(REQUEST)
    result.close()
    return result


@pytest.mark.parametrize(
    "kind, options, code",
    [
        ("http_error", {"status": 503}, ProviderError.UNAVAILABLE),
        ("http_error", {"status": 429}, ProviderError.RATE_LIMITED),
        ("delay", {"seconds": 2}, ProviderError.TIMEOUT),
    ],
)
async def test_an_outage_of_the_primary_fails_over_to_the_backup_at_once(
    make_chain, primary, backup, caplog, kind, options, code
):
    chain = make_chain(primary_timeout=0.3)
    primary.enqueue(kind, **options)

    with caplog.at_level(logging.WARNING, logger="botcore.providers.chain"):
        result = await generate(chain)

    assert result.provider == "backup" and result.model == MODEL
    assert len(primary.requests) == 1  # no retry before failing over
    assert len(backup.requests) == 1
    assert chain.breakers["primary"].consecutive_failures == 1
    assert f"image provider primary failed ({code}); failing over to backup" in caplog.messages


async def test_a_revoked_key_on_the_primary_fails_over_and_no_key_is_logged(make_chain, primary, backup, caplog):
    chain = make_chain(primary_key="revoked-key")

    with caplog.at_level(logging.DEBUG):
        result = await generate(chain)

    assert result.provider == "backup"
    assert len(primary.requests) == 1
    assert "image provider primary failed (operator); failing over to backup" in caplog.messages
    for key in ("revoked-key", primary.api_key, backup.api_key):
        assert key not in caplog.text


@pytest.mark.parametrize(
    "kind, options, code",
    [
        ("prompt_blocked", {}, ProviderError.SAFETY),
        ("finish", {"finish_reason": "IMAGE_SAFETY"}, ProviderError.SAFETY),
        ("text_only", {}, ProviderError.NO_IMAGE),
        ("http_error", {"status": 400}, ProviderError.BAD_REQUEST),
    ],
)
async def test_an_answer_about_the_request_is_raised_without_failover(make_chain, primary, backup, kind, options, code):
    chain = make_chain(breaker_failures=1)
    primary.enqueue(kind, **options)

    with pytest.raises(ProviderError) as raised:
        await generate(chain)

    assert raised.value.code == code
    assert len(primary.requests) == 1
    assert backup.requests == []
    # The provider answered: that is no outage, its breaker stays closed.
    assert chain.breakers["primary"].state == "closed"
    assert chain.breakers["primary"].consecutive_failures == 0


async def test_the_breaker_skips_a_failing_provider_until_the_cooldown_then_a_trial_closes_it(
    make_chain, primary, backup, clock
):
    chain = make_chain(breaker_failures=3, breaker_cooldown_seconds=60)
    breaker = chain.breakers["primary"]
    for _ in range(3):
        primary.enqueue("http_error", status=503)

    for _ in range(3):
        assert (await generate(chain)).provider == "backup"
    assert len(primary.requests) == 3
    assert breaker.state == "open"

    # Open: the primary is not even asked.
    assert (await generate(chain)).provider == "backup"
    clock.advance(59)
    assert (await generate(chain)).provider == "backup"
    assert len(primary.requests) == 3
    assert len(backup.requests) == 5

    # Cooldown over: one trial call, which succeeds and closes the breaker.
    clock.advance(1)
    assert breaker.state == "half-open"
    assert (await generate(chain)).provider == "primary"
    assert len(primary.requests) == 4
    assert breaker.state == "closed"
    assert (await generate(chain)).provider == "primary"
    assert len(backup.requests) == 5


async def test_a_failed_trial_reopens_the_breaker_for_another_cooldown(make_chain, primary, backup, clock):
    chain = make_chain(breaker_failures=2, breaker_cooldown_seconds=60)
    breaker = chain.breakers["primary"]
    for _ in range(3):
        primary.enqueue("http_error", status=503)
    await generate(chain)
    await generate(chain)
    assert breaker.state == "open"

    clock.advance(60)
    assert (await generate(chain)).provider == "backup"  # the trial failed: one failure re-opens it
    assert len(primary.requests) == 3
    assert breaker.state == "open"

    clock.advance(30)
    assert (await generate(chain)).provider == "backup"
    assert len(primary.requests) == 3
    clock.advance(30)
    assert (await generate(chain)).provider == "primary"
    assert breaker.state == "closed"


async def test_in_half_open_only_one_of_two_concurrent_calls_reaches_the_provider(make_chain, primary, backup, clock):
    chain = make_chain(breaker_failures=1, breaker_cooldown_seconds=60)
    primary.enqueue("http_error", status=503)
    await generate(chain)
    clock.advance(60)
    primary.enqueue("delay", seconds=0.3)  # the trial takes a while; the other call must not join it

    first, second = await asyncio.gather(generate(chain), generate(chain))

    assert (first.provider, second.provider) == ("primary", "backup")
    assert len(primary.requests) == 2  # the failure, then the one trial
    assert primary.max_in_flight == 1
    assert len(backup.requests) == 2
    assert chain.breakers["primary"].state == "closed"


async def test_a_cancelled_trial_lets_the_next_call_try_again(make_chain, primary, clock):
    chain = make_chain(breaker_failures=1, breaker_cooldown_seconds=60)
    primary.enqueue("http_error", status=503)
    await generate(chain)
    clock.advance(60)
    primary.enqueue("delay", seconds=5)
    trial = asyncio.create_task(generate(chain))
    await primary.wait_for(lambda fake: len(fake.requests) == 2, what="the trial call")

    trial.cancel()  # e.g. the job was stopped: no verdict on the provider
    with pytest.raises(asyncio.CancelledError):
        await trial

    assert chain.breakers["primary"].state == "half-open"
    assert (await generate(chain)).provider == "primary"
    assert chain.breakers["primary"].state == "closed"


async def test_when_every_provider_is_down_the_error_is_unavailable_then_they_are_skipped(make_chain, primary, backup):
    chain = make_chain(breaker_failures=1, max_retries=1)
    primary.enqueue("http_error", status=503)
    backup.enqueue("http_error", status=503)
    backup.enqueue("http_error", status=503)

    with pytest.raises(ProviderError) as raised:
        await generate(chain)
    assert raised.value.code == ProviderError.UNAVAILABLE
    assert "HTTP 503" in raised.value.detail  # the last error seen: the backup's
    assert (len(primary.requests), len(backup.requests)) == (1, 2)

    # Both breakers are open now: a clear error at once, without asking anyone.
    with pytest.raises(ProviderError) as raised:
        await generate(chain)
    assert raised.value.code == ProviderError.UNAVAILABLE
    assert raised.value.detail == "every image provider is unavailable"
    assert (len(primary.requests), len(backup.requests)) == (1, 2)


async def test_the_last_provider_retries_transient_errors(make_chain, primary, backup):
    chain = make_chain(max_retries=2)
    primary.enqueue("http_error", status=503)
    backup.enqueue("http_error", status=429)
    backup.enqueue("http_error", status=503)

    result = await generate(chain)

    assert result.provider == "backup"
    assert len(primary.requests) == 1
    assert len(backup.requests) == 3
    assert chain.breakers["backup"].state == "closed"


async def test_the_primary_retries_when_the_backup_circuit_is_open(make_chain, primary, backup):
    chain = make_chain(breaker_failures=3, max_retries=2)
    for _ in range(3):
        chain.breakers["backup"].failed()
    primary.enqueue("http_error", status=503)

    result = await generate(chain)

    assert result.provider == "primary"  # the last provider available: it gets the retries
    assert len(primary.requests) == 2
    assert backup.requests == []


async def test_a_late_failure_of_an_older_call_neither_ends_the_trial_nor_starts_another():
    clock = FakeClock()
    breaker = CircuitBreaker(failures=2, cooldown_seconds=60, clock=clock)
    assert breaker.allow()  # a slow call, still running when the breaker opens
    assert breaker.allow() and breaker.allow()
    breaker.failed()
    breaker.failed()
    assert breaker.state == "open" and not breaker.allow()

    clock.advance(60)
    assert breaker.state == "half-open"
    assert not breaker.allow()  # the older call has not ended: no trial yet
    breaker.failed()  # it times out: a fresh failure, another cooldown
    assert breaker.state == "open"

    clock.advance(60)
    assert breaker.allow()  # the trial
    assert not breaker.allow()
    breaker.released()  # cancelled: no verdict, the next caller may try
    assert breaker.state == "half-open"
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allow()


async def test_the_calls_of_one_batch_failing_together_count_as_one_failure(make_chain, primary):
    chain = make_chain(breaker_failures=2, clock=time.monotonic)
    for _ in range(4):
        primary.enqueue("http_error", status=503)
    results = await asyncio.gather(*(chain.generate(REQUEST) for _ in range(4)))
    assert {result.provider for result in results} == {"backup"}
    assert chain.breakers["primary"].state == "closed"  # four overlapping calls saw one outage
    for result in results:
        result.close()
