"""Many processes, one bot, as production runs it: real processes on PostgreSQL and Redis.

- a web server with two workers (uvicorn, as compose.yaml runs it), and a second web server, as on
  another machine behind the same load balancer: Telegram's webhook reaches both;
- two Celery workers running the jobs, and celery beat sending the housekeeping chores;
- the fakes: Telegram's Bot API with its send limits on (429 beyond them), Gemini first in the chain
  and an OpenAI-compatible relay behind it.

Each test is one thing an operator counts on once there is more than one process.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from asgiref.sync import sync_to_async
from django.db import connections

from botcore.models import Generation
from tests.conftest import WEBHOOK_SECRET, WEBHOOK_URL
from tests.fakes import FakeGemini, FakeTelegram
from tests.fakes.openai_images import FakeOpenAIImages
from tests.fakes.processes import BOT_TOKEN, GEMINI_KEY, free_port, process_env
from tests.test_bot_generation import texts_in, usage_of
from tests.test_bot_inputs import largest, picture

ROOT = Path(__file__).resolve().parent.parent
CACHE_URL = "redis://127.0.0.1:6379/9"
BROKER_URL = "redis://127.0.0.1:6379/8"
LEASE = 5  # JOB_LEASE_SECONDS: a dead worker's job is given up this soon
IMAGE_SECONDS = 0.5  # Gemini's answer time

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(
        connections["default"].vendor != "postgresql",
        reason="the production topology runs on PostgreSQL",
    ),
]


@dataclass
class Cluster:
    tg: FakeTelegram
    gemini: FakeGemini
    relay: FakeOpenAIImages
    web_ports: list[int]
    env: dict
    workers: list[subprocess.Popen] = field(default_factory=list)

    async def post(self, update, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            answer = await http.post(
                WEBHOOK_URL, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
            )
        assert answer.status_code == 200
        return answer

    def start_worker(self, number):
        command = [sys.executable, "-m", "celery", "-A", "nanobot_site", "worker", "--concurrency", "3"]
        command += ["--hostname", f"topology{number}@%h", "--loglevel=WARNING", "--without-gossip", "--without-mingle"]
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, start_new_session=True)
        self.workers.insert(number, process)
        return process


def _serving(port):
    with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def _stop(process):
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def cluster(django_db_setup, tmp_path_factory):
    for url in (CACHE_URL, BROKER_URL):
        try:
            redis.Redis.from_url(url).flushdb()
        except redis.ConnectionError:
            if os.environ.get("CI"):
                pytest.fail("Redis is not running on 127.0.0.1:6379; .ci/run should have started it")
            pytest.skip("needs Redis on 127.0.0.1:6379")
    with (
        FakeTelegram(token=BOT_TOKEN, rate_limits=True) as tg,
        FakeGemini(api_key=GEMINI_KEY) as gemini,
        FakeOpenAIImages() as relay,
        ExitStack() as processes,
    ):
        gemini.latency = IMAGE_SECONDS
        env = process_env(
            tg,
            gemini,
            TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            ALLOWED_HOSTS="127.0.0.1",
            CACHE_URL=CACHE_URL,
            CELERY_BROKER_URL=BROKER_URL,
            CELERY_QUEUE=f"topology-{uuid.uuid4().hex[:8]}",
            JOB_LEASE_SECONDS=LEASE,
            IMAGE_PROVIDERS="gemini,openai",
            OPENAI_IMAGES_BASE_URL=relay.base_url,
            OPENAI_IMAGES_API_KEY=relay.api_key,
            OPENAI_IMAGES_MODEL="gpt-image-1",
            PROVIDER_BREAKER_FAILURES=2,
            HOUSEKEEPING_SECONDS=1,  # the stale-job sweep, every second
            LOG_LEVEL="WARNING",
        )
        web_ports = [free_port(), free_port()]
        for port, workers in zip(web_ports, ("2", "1"), strict=True):
            command = [sys.executable, "-m", "uvicorn", "nanobot_site.asgi:application", "--port", str(port)]
            web = subprocess.Popen([*command, "--workers", workers], cwd=ROOT, env=env, start_new_session=True)
            processes.callback(_stop, web)
        topology = Cluster(tg, gemini, relay, web_ports, env)
        for number in range(2):
            topology.start_worker(number)
        processes.callback(lambda: [_stop(worker) for worker in topology.workers])
        schedule = tmp_path_factory.mktemp("beat") / "schedule"
        command = [sys.executable, "-m", "celery", "-A", "nanobot_site", "beat", "--schedule", str(schedule)]
        beat = subprocess.Popen([*command, "--loglevel=WARNING"], cwd=ROOT, env=env, start_new_session=True)
        processes.callback(_stop, beat)
        deadline = time.monotonic() + 60
        while not all(_serving(port) for port in web_ports):
            assert time.monotonic() < deadline, "the web servers did not start"
            time.sleep(0.1)
        yield topology


@pytest.fixture(autouse=True)
async def fresh_shared_state(cluster):
    """Each story starts with the providers' breakers closed and nothing cached."""
    redis.Redis.from_url(CACHE_URL).flushdb()
    yield
    await sync_to_async(connections.close_all)()  # the ORM's thread has a connection of its own


def photos_to(tg, chat_id):
    return [call for call in tg.calls_of("sendPhoto") if call.params["chat_id"] in (chat_id, str(chat_id))]


async def generations_of(telegram_id):
    return [g async for g in Generation.objects.filter(user__telegram_id=telegram_id).order_by("pk")]


async def test_a_burst_of_60_users_through_the_webhook_is_served_without_a_429(cluster, default_tiers):
    users = range(71001, 71061)
    updates = [cluster.tg.push_text(user, f"a paper boat, number {user}") for user in users]
    refused_before = cluster.tg.rate_limited

    # The load balancer spreads them over both web servers.
    await asyncio.gather(*(cluster.post(update, cluster.web_ports[n % 2]) for n, update in enumerate(updates)))

    started = time.monotonic()
    await cluster.tg.wait_for(lambda t: all(photos_to(t, user) for user in users), timeout=90, what="every image")
    print(f"60 users served in {time.monotonic() - started:.1f} s")
    assert cluster.tg.rate_limited == refused_before  # the send limits held across all the processes
    for user in users:
        assert len(photos_to(cluster.tg, user)) == 1
        assert await sync_to_async(usage_of)(user) == (1, 0)
    await cluster.tg.wait_for(
        lambda t: not any("Creating your image" in text for user in users for text in texts_in(t, user)), timeout=30
    )
    runners = {g.runner async for g in Generation.objects.filter(user__telegram_id__in=users)}
    assert len(runners) >= 2  # the jobs were spread over the workers' processes


async def test_an_update_telegram_delivers_twice_to_different_web_servers_is_one_job(cluster, default_tiers):
    update = cluster.tg.push_text(72001, "a kite over the dunes")

    await asyncio.gather(*(cluster.post(update, port) for port in [*cluster.web_ports, cluster.web_ports[0]]))

    await cluster.tg.wait_for(lambda t: photos_to(t, 72001), timeout=30)
    await asyncio.sleep(2 * IMAGE_SECONDS)  # time enough for a second job, had there been one
    assert len(await generations_of(72001)) == 1
    assert len(photos_to(cluster.tg, 72001)) == 1
    assert await sync_to_async(usage_of)(72001) == (1, 0)


async def test_an_album_whose_parts_reach_different_web_servers_is_one_request_with_all_of_them(cluster, default_tiers):
    parts = [
        cluster.tg.push_photo(73001, picture(color), caption=caption, media_group_id="topology-album")
        for color, caption in [("red", None), ("green", "put all three in one frame"), ("blue", None)]
    ]
    asked_before = len(cluster.gemini.requests)

    for part, port in zip(parts, [cluster.web_ports[0], cluster.web_ports[1], cluster.web_ports[0]], strict=True):
        await cluster.post(part, port)

    await cluster.tg.wait_for(lambda t: photos_to(t, 73001), timeout=30)
    await asyncio.sleep(1)  # longer than ALBUM_WAIT_SECONDS: no second job follows
    [generation] = await generations_of(73001)
    assert generation.references == [largest(part) for part in parts]
    assert (generation.reference_count, generation.status) == (3, "delivered")
    [asked] = cluster.gemini.requests[asked_before:]
    assert asked.prompt == "put all three in one frame" and len(asked.images) == 3


async def test_two_provider_failures_seen_by_different_workers_open_the_breaker_for_all(cluster, default_tiers):
    gemini, relay = cluster.gemini, cluster.relay
    asked_before = len(gemini.requests)
    gemini.enqueue("http_error", status=503)
    gemini.enqueue("http_error", status=503)
    relay.latency = 3  # the first job's process stays busy on the relay: the second runs elsewhere

    await cluster.post(cluster.tg.push_text(74001, "a lighthouse at dusk"), cluster.web_ports[0])
    await relay.wait_for(lambda r: r.in_flight == 1, timeout=30, what="the first job failed over to the relay")
    relay.latency = 0
    await cluster.post(cluster.tg.push_text(74002, "a harbour at night"), cluster.web_ports[1])
    await cluster.tg.wait_for(lambda t: photos_to(t, 74002), timeout=30)
    await cluster.post(cluster.tg.push_text(74003, "a tram in the rain"), cluster.web_ports[0])
    await cluster.tg.wait_for(lambda t: photos_to(t, 74001) and photos_to(t, 74003), timeout=30)

    [first], [second], [third] = [await generations_of(user) for user in (74001, 74002, 74003)]
    assert first.runner != second.runner  # each failure was seen by a different process
    assert len(gemini.requests) - asked_before == 2  # the third job never asked Gemini: open for all
    assert (third.provider, third.status) == ("openai", "delivered")


def _children(pid):
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return {int(child) for child in found}


async def test_a_worker_killed_mid_job_leaves_no_user_waiting_and_charges_nobody_twice(cluster, default_tiers):
    cluster.gemini.enqueue("delay", seconds=120)
    await cluster.post(cluster.tg.push_text(75001, "a glass city under the sea"), cluster.web_ports[1])
    await cluster.gemini.wait_for(lambda g: g.in_flight == 1, timeout=30, what="the image call")
    [generation] = await generations_of(75001)
    pid = int(generation.runner.split(":")[1])
    [number] = [n for n, worker in enumerate(cluster.workers) if pid in _children(worker.pid)]
    killed = cluster.workers.pop(number)

    os.killpg(killed.pid, signal.SIGKILL)  # the whole worker: its main process and its pool
    killed.wait()
    cluster.start_worker(number)  # the next tests have two workers again

    def heard(tg):
        told = any("Creating your image" not in text and text for text in texts_in(tg, 75001)[1:])
        return photos_to(tg, 75001) or told

    await cluster.tg.wait_for(heard, timeout=90, what="the user hears about their image")
    await cluster.tg.wait_for(
        lambda t: not any("Creating your image" in text for text in texts_in(t, 75001)), timeout=30
    )
    [generation] = await generations_of(75001)
    used, reserved = await sync_to_async(usage_of)(75001)
    assert reserved == 0 and used == (1 if generation.status == "delivered" else 0)
    assert len(photos_to(cluster.tg, 75001)) <= 1
