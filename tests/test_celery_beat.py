"""Housekeeping and job limits with a broker: celery beat sends the chores and a Celery worker does them,
with no bot running; a job over its time limit is stopped, its user told and nothing charged; a job whose
database connection dropped is tried again and delivered once. Without a broker the bot's own loop does the
same chores."""

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import psycopg
import pytest
from asgiref.sync import sync_to_async
from django import db
from django.db import connection
from django.utils import timezone

from botcore import generations
from botcore.models import Generation
from botcore.telegram import dispatch
from tests.conftest import settled
from tests.fakes.processes import BOT_TOKEN, database_url, process_env
from tests.test_bot_generation import ALICE, texts_in, usage_of
from tests.test_celery_worker import celery, celery_broker, celery_worker
from tests.test_heartbeats import listed

BROKER_URL = "redis://127.0.0.1:6379/13"
QUEUE = f"nanobot-beat-test-{uuid.uuid4().hex[:8]}"
ROUND = 0.5  # HOUSEKEEPING_SECONDS of the processes here: the stale-job sweep runs twice a second
LEASE = 2  # their JOB_LEASE_SECONDS


@pytest.fixture(autouse=True)
async def orm_thread_closed():
    yield
    # The test's own queries ran in sync_to_async's thread: its connection would outlive the test database.
    await sync_to_async(db.connections.close_all)()


@pytest.fixture
def broker(redis_server):
    with celery_broker(BROKER_URL, QUEUE) as url:
        yield url


def celery_env(tg, gemini, **extra):
    return process_env(
        tg, gemini, CELERY_BROKER_URL=BROKER_URL, CELERY_QUEUE=QUEUE, HOUSEKEEPING_SECONDS=ROUND, **extra
    )


@pytest.fixture
def beat(broker, tg, gemini, transactional_db, tmp_path):
    # The schedule file where the process may write, as compose.yaml puts it.
    with celery(celery_env(tg, gemini), "beat", "--schedule", str(tmp_path / "beat-schedule")) as process:
        yield process


@pytest.fixture
def worker_log(tmp_path):
    return tmp_path / "worker.log"


@pytest.fixture
def worker(broker, tg, gemini, transactional_db, worker_log):
    env = celery_env(tg, gemini, JOB_LEASE_SECONDS=LEASE)
    with open(worker_log, "w") as output, celery_worker(env, "--pool=solo", output=output) as process:
        yield process


def a_running_job(tg, *, lease_left):
    """Alice's job, run by a process that is gone, its status message shown, its lease ending `lease_left` from
    now (negative: it ran out)."""
    [generation] = generations.request(
        identity=generations.Identity(ALICE, first_name="Alice"), chat_id=ALICE, prompt="a tram in the rain", taken=True
    )
    sent = httpx.post(f"{tg.base_url}{BOT_TOKEN}/sendMessage", json={"chat_id": ALICE, "text": "Creating your image…"})
    status_message_id = sent.json()["result"]["message_id"]
    Generation.objects.filter(pk=generation.pk).update(
        runner="gone:1:0", status_message_id=status_message_id, lease_until=timezone.now() + lease_left
    )
    return generation


async def test_beat_and_a_worker_fail_a_job_whose_lease_ran_out_and_tell_its_user(
    default_tiers, tg, worker, beat, worker_log
):
    # Its runner died long enough ago, Celery's grace for a takeover included; no bot runs.
    await sync_to_async(a_running_job)(tg, lease_left=-timedelta(seconds=3 * LEASE))

    await tg.wait_for(lambda t: "bot restarted" in texts_in(t, ALICE)[-1], timeout=30, what="the apology")
    [generation] = await settled(1)
    assert (generation.status, generation.error_code) == ("failed", "interrupted")
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    assert texts_in(tg, ALICE) == [texts_in(tg, ALICE)[-1]]  # the status message became the apology
    assert "botcore.tasks.expire_stale_jobs" in worker_log.read_text()


async def test_a_running_beat_is_listed_alive(beat):
    [process] = await listed("beat", timeout=30)
    assert process.alive and process.name != generations.runner()


@pytest.fixture
def prefork_worker(broker, tg, gemini, transactional_db, worker_log):
    env = celery_env(tg, gemini, JOB_TIME_LIMIT_SECONDS=2)
    with open(worker_log, "w") as output:
        with celery_worker(env, "--pool=prefork", "--concurrency=1", output=output) as process:
            yield process


@pytest.mark.bot_settings(CELERY_BROKER_URL=BROKER_URL)
async def test_a_job_over_its_time_limit_is_stopped_its_user_told_and_nothing_charged(
    prefork_worker, bot, tg, gemini, worker_log
):
    gemini.enqueue("delay", seconds=60)  # far beyond the worker's 2 s
    tg.push_text(ALICE, "a tram in the rain")

    await tg.wait_for(lambda t: "took too long" in texts_in(t, ALICE)[-1], timeout=60, what="the apology")
    [generation] = await settled(1)
    assert (generation.status, generation.error_code) == ("failed", "timeout")
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    assert not any("Creating your image" in text for text in texts_in(tg, ALICE))
    assert tg.calls_of("sendPhoto") == [] and len(gemini.requests) == 1
    assert "stopped at the soft time limit" in worker_log.read_text()


def needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("ends the worker's PostgreSQL session (pg_terminate_backend)")


def alices_job(prompt):
    [generation] = generations.request(
        identity=generations.Identity(ALICE, first_name="Alice"), chat_id=ALICE, prompt=prompt
    )
    return generation


@asynccontextmanager
async def session_ended_while_waiting_for(generation):
    """Hold a lock on the generation's row while the block runs; the worker's session that waits for it (its
    next UPDATE of the row) is then ended, as a database restart, a failover or an idle-session killer would."""
    with psycopg.connect(database_url()) as holder, psycopg.connect(database_url(), autocommit=True) as monitor:
        holder.execute("SELECT 1 FROM botcore_generation WHERE id = %s FOR UPDATE", [generation.pk])
        yield
        for _ in range(300):
            waiting = monitor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND query LIKE 'UPDATE \"botcore_generation\"%'"
            ).fetchall()
            if waiting:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the worker never waited for the row")
        for (pid,) in waiting:
            monitor.execute("SELECT pg_terminate_backend(%s)", [pid])
        holder.rollback()


async def test_a_job_whose_database_connection_dropped_as_it_was_taken_is_tried_again_and_delivered_once(
    default_tiers, tg, gemini, broker, worker, worker_log
):
    needs_postgresql()
    generation = await sync_to_async(alices_job)("a lighthouse at dusk")
    async with session_ended_while_waiting_for(generation):  # the UPDATE that takes the job
        await sync_to_async(dispatch.publish)(dispatch.GENERATION_TASK, [generation.pk], None)

    [generation] = await settled(1, timeout=60)
    assert (generation.status, generation.attempts) == ("delivered", 1)
    assert len(tg.calls_of("sendPhoto")) == 1 and len(gemini.requests) == 1
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)
    assert "trying again (1 of 6)" in worker_log.read_text()


async def test_a_job_whose_database_connection_dropped_once_taken_is_ended_never_made_twice(
    default_tiers, tg, gemini, broker, worker, worker_log
):
    needs_postgresql()
    gemini.enqueue("delay", seconds=3)
    generation = await sync_to_async(alices_job)("a lighthouse at dusk")
    await sync_to_async(dispatch.publish)(dispatch.GENERATION_TASK, [generation.pk], None)
    await gemini.wait_for(lambda g: g.in_flight == 1, timeout=30, what="the image call")
    async with session_ended_while_waiting_for(generation):  # the renewal of its lease
        pass

    # Its image may have reached the user before the try failed: the next try ends the job, nothing charged.
    [generation] = await settled(1, timeout=60)
    assert (generation.status, generation.error_code, generation.attempts) == ("failed", "interrupted", 1)
    assert len(gemini.requests) == 1 and len(tg.calls_of("sendPhoto")) <= 1
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    await tg.wait_for(lambda t: "Nothing was charged" in texts_in(t, ALICE)[-1], what="the apology")
    assert "trying again (1 of 6)" in worker_log.read_text()


@pytest.mark.bot_settings(HOUSEKEEPING_SECONDS=ROUND)
async def test_without_a_broker_the_bot_itself_fails_a_job_whose_lease_ran_out(bot, tg):
    await sync_to_async(a_running_job)(tg, lease_left=-timedelta(seconds=1))

    await tg.wait_for(lambda t: "bot restarted" in texts_in(t, ALICE)[-1], timeout=10, what="the apology")
    [generation] = await settled(1)
    assert (generation.status, generation.error_code) == ("failed", "interrupted")
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
