"""Several processes, one bot: with Redis (CACHE_URL) what holds per bot is shared by every process
that serves it; without Redis, or while it is away, each process goes on with its own.

Each "process" here is what a process owns (its own Outbound, its own Application), side by side
in one test process; tests/test_topology.py runs real ones.
"""

import asyncio
import itertools
from contextlib import asynccontextmanager

import httpx
import pytest
import redis
from asgiref.sync import sync_to_async
from django.db import connections
from telegram import Update
from telegram.ext import ExtBot

from botcore.providers.base import ImageRequest
from botcore.providers.breakers import SharedBreaker
from botcore.providers.chain import ProviderChain
from botcore.providers.gemini import GeminiProvider
from botcore.telegram import delivery
from botcore.telegram.application import build_application, start, stop
from botcore.telegram.outbound import LocalBudget, Outbound, SharedBudget
from botcore.telegram.transport import AiohttpRequest
from tests.conftest import settled
from tests.fakes import FakeGemini, FakeTelegram
from tests.fakes.processes import BOT_TOKEN, free_port
from tests.test_bot_generation import ALICE
from tests.test_bot_inputs import largest, picture, stored

pytestmark = pytest.mark.asyncio

MODEL = "gemini-3-pro-image-preview"
SHARED_REDIS = "redis://127.0.0.1:6379/10"


@pytest.fixture
def shared_redis(redis_server, settings):
    """CACHE_URL names a Redis (emptied before and after)."""
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    settings.CACHES = {"default": {"BACKEND": "nanobot_site.cache.RedisCache", "LOCATION": SHARED_REDIS}}
    client = redis.Redis.from_url(SHARED_REDIS)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def limited_tg():
    with FakeTelegram(token=BOT_TOKEN, rate_limits=True) as fake:
        yield fake


def sender(tg):
    """A process's own Bot and limiter, as the web server's and each Celery job's are made."""
    limiter = Outbound(shared_budget=True)
    return ExtBot(BOT_TOKEN, base_url=tg.base_url, request=AiohttpRequest(), rate_limiter=limiter)


async def burst_from_two_processes(tg):
    async with sender(tg) as one, sender(tg) as other:
        await asyncio.gather(
            *(one.send_message(chat_id, "hello") for chat_id in range(1000, 1070)),
            *(other.send_message(chat_id, "hello") for chat_id in range(2000, 2070)),
        )
        return one.rate_limiter, other.rate_limiter


async def test_two_processes_sending_for_one_bot_stay_under_telegrams_limit_together(shared_redis, limited_tg):
    one, other = await burst_from_two_processes(limited_tg)
    assert isinstance(one.budget, SharedBudget)
    assert limited_tg.rate_limited == 0  # each alone would have sent at the whole limit: 429s
    assert all(limited_tg.chat(chat_id) for chat_id in [*range(1000, 1070), *range(2000, 2070)])


async def test_without_redis_each_process_paces_its_own_sends(limited_tg):
    one, _ = await burst_from_two_processes(limited_tg)
    assert isinstance(one.budget, LocalBudget)
    # The embedded default runs one process; two of them without Redis overrun Telegram's limit,
    # and every message still arrives, each 429 waited out.
    assert limited_tg.rate_limited > 0
    assert all(limited_tg.chat(chat_id) for chat_id in [*range(1000, 1070), *range(2000, 2070)])


async def test_while_redis_is_away_sends_are_paced_in_the_process_and_still_go_out(settings, limited_tg, caplog):
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    settings.CACHES = {
        "default": {"BACKEND": "nanobot_site.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }
    async with sender(limited_tg) as bot:
        await asyncio.gather(*(bot.send_message(chat_id, "hello") for chat_id in range(1000, 1040)))
    assert limited_tg.rate_limited == 0
    assert all(limited_tg.chat(chat_id) for chat_id in range(1000, 1040))
    assert "pacing Telegram sends goes on without it" in caplog.text


@asynccontextmanager
async def web_workers(count):
    """`count` web workers' bots: each its own Application, as each uvicorn worker starts one."""
    workers = [build_application() for _ in range(count)]
    for worker in workers:
        await start(worker)
    try:
        yield workers
    finally:
        for worker in workers:
            await stop(worker)
        await sync_to_async(connections.close_all)()


async def test_an_album_whose_parts_reach_different_web_workers_is_one_request_with_all_of_them(
    shared_redis, default_tiers, bot_settings, tg, gemini
):
    async with web_workers(2) as workers:
        parts = [
            tg.push_photo(ALICE, picture(color), caption=caption, media_group_id="album-1")
            for color, caption in [("red", None), ("green", "put all three in one frame"), ("blue", None)]
        ]
        for worker, part in zip(itertools.cycle(workers), parts, strict=False):
            await worker.update_queue.put(Update.de_json(part, worker.bot))

        [generation] = await settled(1)
        await asyncio.sleep(0.5)  # longer than ALBUM_WAIT_SECONDS: no second job follows

    [asked] = gemini.requests
    assert asked.prompt == "put all three in one frame"
    assert asked.images == [("image/jpeg", stored(tg, largest(part))) for part in parts]
    assert (generation.kind, generation.reference_count, generation.status) == ("edit", 3, "delivered")
    [photo] = tg.calls_of("sendPhoto")
    assert photo.params["reply_parameters"]["message_id"] == parts[1]["message"]["message_id"]


def chain_of_a_process(client, primary, backup):
    """A process's provider chain: its own providers and breakers, the breakers' state in Redis."""
    providers = []
    for name, fake in (("primary", primary), ("backup", backup)):
        provider = GeminiProvider(
            client=client, api_key=fake.api_key, base_url=fake.base_url, model=MODEL, timeout=10, max_retries=0
        )
        provider.name = name
        providers.append(provider)
    breakers = {name: SharedBreaker(name, failures=2, cooldown_seconds=60) for name in ("primary", "backup")}
    return ProviderChain(providers, breakers=breakers, max_retries=0, retry_base_delay=0)


async def test_two_failures_seen_by_different_processes_open_the_breaker_for_every_process(shared_redis):
    request = ImageRequest(prompt="a lighthouse at dusk", resolution="1K", aspect_ratio="1:1")
    with FakeGemini(api_key="primary-key") as primary, FakeGemini(api_key="backup-key") as backup:
        async with httpx.AsyncClient() as client:
            one, other, third = (chain_of_a_process(client, primary, backup) for _ in range(3))
            primary.enqueue("http_error", status=503)
            primary.enqueue("http_error", status=503)
            for chain in (one, other):  # one failure each, each served by the backup
                (await chain.generate(request)).close()

            result = await third.generate(request)
            result.close()

    assert result.provider == "backup"
    assert len(primary.requests) == 2  # the third process never called it: open for all
    assert third.breakers["primary"].state == "open"


async def test_the_uploading_indicator_stops_when_the_job_ends_even_while_redis_answers(shared_redis, tg):
    # redis-py may finish a command its task was cancelled during and return as if not cancelled:
    # the indicator's loop went on, and the job waiting for it to stop never ended.
    async with sender(tg) as bot:
        for attempt in range(150):

            async def show_briefly(pause=attempt % 15 / 10_000):
                async with delivery.chat_action(bot, 4242, every=0):
                    await asyncio.sleep(pause)

            showing = asyncio.ensure_future(show_briefly())
            ended, _ = await asyncio.wait({showing}, timeout=5)
            while not showing.done():  # stop it for good before failing, or the test would hang
                showing.cancel()
                await asyncio.sleep(0.01)
            assert ended, "the indicator was still shown after its job ended"
