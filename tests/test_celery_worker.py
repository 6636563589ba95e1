"""With a broker configured, the bot hands jobs to a real Celery worker process; a job whose worker
was killed is brought again by the broker and finished once, never twice."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from botcore import generations
from botcore.models import Generation
from nanobot_site.celery import app as celery_app
from tests.conftest import settled
from tests.fakes.processes import process_env
from tests.test_bot_generation import ALICE, texts_in, usage_of
from tests.test_heartbeats import listed

ROOT = Path(__file__).resolve().parent.parent
BROKER_URL = "redis://127.0.0.1:6379/15"
DEAD_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
QUEUE = f"nanobot-test-{uuid.uuid4().hex[:8]}"
LEASE = 5  # JOB_LEASE_SECONDS of the worker and the bot: a dead worker's job is taken over this soon


def use_broker(url, queue):
    # The Celery app read its configuration once, at import, and pools its connections:
    # point it at this broker and drop the pools made for the previous one.
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = url, queue
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def celery_broker(url, queue=QUEUE):
    saved = celery_app.conf.broker_url, celery_app.conf.task_default_queue
    use_broker(url, queue)
    try:
        yield url
    finally:
        use_broker(*saved)


@pytest.fixture
def broker(redis_server):
    with celery_broker(BROKER_URL) as url:
        yield url


@pytest.fixture
def dead_broker():
    with celery_broker(DEAD_BROKER_URL) as url:
        yield url


def celery_worker(env, *pool, output=subprocess.PIPE):
    """`celery worker` in a process of its own, stopped (or killed) at the end."""
    return celery(env, "worker", *pool, "--without-gossip", "--without-mingle", "--without-heartbeat", output=output)


@contextmanager
def celery(env, *arguments, output=subprocess.PIPE):
    """`celery -A nanobot_site <arguments>` in a process of its own, its log in `output`, stopped (or killed) at
    the end."""
    command = [sys.executable, "-m", "celery", "-A", "nanobot_site", *arguments, "--loglevel=INFO"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def worker(broker, tg, gemini, transactional_db):
    with celery_worker(process_env(tg, gemini, CELERY_BROKER_URL=broker, CELERY_QUEUE=QUEUE), "--pool=solo") as process:
        yield process


@pytest.mark.bot_settings(CELERY_BROKER_URL=BROKER_URL)
async def test_job_runs_in_the_worker_and_the_photo_is_delivered(worker, bot, tg, gemini):
    tg.push_text(ALICE, "a tram in the rain")

    [generation] = await settled(1, timeout=60)

    assert generation.status == "delivered"
    assert len(tg.calls_of("sendPhoto")) == 1
    worker.terminate()
    log = worker.communicate(timeout=15)[0]
    assert "botcore.tasks.run_generation_task" in log and "succeeded" in log


@pytest.mark.bot_settings(CELERY_BROKER_URL=DEAD_BROKER_URL)
async def test_request_fails_cleanly_when_the_broker_is_down(dead_broker, bot, tg, gemini):
    tg.push_text(ALICE, "a tram in the rain")

    [generation] = await settled(1, timeout=60)

    assert (generation.status, generation.error_code) == ("failed", "internal")
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    await tg.wait_for(lambda t: "Nothing was charged" in texts_in(t, ALICE)[-1], what="the apology")
    assert not any("Creating your image" in text for text in texts_in(tg, ALICE))
    assert gemini.requests == []


@pytest.fixture
def prefork_worker(broker, tg, gemini, transactional_db):
    env = process_env(tg, gemini, CELERY_BROKER_URL=broker, CELERY_QUEUE=QUEUE, JOB_LEASE_SECONDS=LEASE)
    with celery_worker(env, "--pool=prefork", "--concurrency=1") as process:
        yield process


def children_of(pid):
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


async def wait_for_children(pid):
    for _ in range(300):
        if children := children_of(pid):
            return children
        await asyncio.sleep(0.1)
    raise AssertionError("the worker started no pool process")


@pytest.mark.bot_settings(CELERY_BROKER_URL=BROKER_URL, JOB_LEASE_SECONDS=LEASE)
async def test_a_job_whose_worker_was_killed_is_finished_once_by_the_next(prefork_worker, bot, tg, gemini):
    [child] = await wait_for_children(prefork_worker.pid)
    gemini.enqueue("delay", seconds=60)
    tg.push_text(ALICE, "a tram in the rain")
    await gemini.wait_for(lambda g: g.in_flight == 1, timeout=60, what="the image call")

    os.kill(child, signal.SIGKILL)  # acks_late: the broker hands the task out again

    [generation] = await settled(1, timeout=60)
    assert generation.status == "delivered" and generation.attempts == 2
    assert len(tg.calls_of("sendPhoto")) == 1 and len(gemini.requests) == 2
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)
    await tg.wait_for(lambda t: not any("Creating your image" in text for text in texts_in(t, ALICE)))
    assert await Generation.objects.acount() == 1


async def test_a_running_worker_is_listed_alive(worker):
    [process] = await listed("worker", timeout=30)
    assert process.alive and process.name != generations.runner()  # the worker's own name, not this process's
