"""Celery tasks: thin edges calling the job pipeline (telegram/jobs.py), broadcasts and housekeeping.

A job's task is acknowledged when it ends (acks_late; settings, Celery section), so one whose worker died
is brought again and taken over once its lease runs out, never run twice at once (jobs.run_generation).
It has time limits (JOB_TIME_LIMIT_SECONDS): at the soft one the job is stopped, failed and its user told.
An error of the database or the broker is retried, with capped exponential backoff and full jitter.
Housekeeping is a task per chore of housekeeping.CHORES, which celery beat sends (`beat_schedule`).
"""

import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from billiard.pool import SIG_SOFT_TIMEOUT, soft_timeout_sighandler  # type: ignore[import-untyped]
from celery import shared_task
from celery.signals import beat_init, worker_process_init, worker_ready
from celery.utils.time import get_exponential_backoff_interval
from django import db
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError

from . import broadcasts, generations, heartbeats, memory
from .errors import ErrorCode
from .models import Heartbeat
from .telegram import housekeeping, jobs
from .telegram.dispatch import BROADCAST_TASK, GENERATION_TASK

log = logging.getLogger(__name__)

# The database restarting, failing over or dropping a connection, or the broker away for a moment.
TRANSIENT = (db.OperationalError, db.InterfaceError, BrokerError)
# Tries after the first, each after a wait drawn between 0 and 1, 2, 4, 8, 16, 32 s (each at most a minute): the
# database has a minute or so to come back.
RETRIES = 6
FIRST_WAIT, LONGEST_WAIT = 1, 60
BACKOFF = {"retry_backoff": FIRST_WAIT, "retry_backoff_max": LONGEST_WAIT, "retry_jitter": True}
SOFT_LIMIT = settings.JOB_TIME_LIMIT_SECONDS
TIME_LIMITS = {"soft_time_limit": SOFT_LIMIT, "time_limit": SOFT_LIMIT + settings.JOB_STOP_SECONDS}

worker_process_init.connect(lambda **kwargs: memory.return_freed_images_to_the_os(), weak=False)
# The worker's main process beats for the worker, and beat's for beat: each lives as long as its process does.
worker_ready.connect(lambda **kwargs: heartbeats.beat_in_background(Heartbeat.Kind.WORKER), weak=False)
beat_init.connect(lambda **kwargs: heartbeats.beat_in_background(Heartbeat.Kind.BEAT), weak=False)


@shared_task(bind=True, name=GENERATION_TASK, acks_late=True, ignore_result=True, **TIME_LIMITS)
def run_generation_task(self, generation_ids, status_message_id=None, tried_by=()):
    """`tried_by`: the processes whose earlier tries of this task ended in an error."""
    if isinstance(generation_ids, int):  # a task queued before batches existed
        generation_ids = [generation_ids]
    try:
        asyncio.run(_run_generation(generation_ids, status_message_id, tried_by))
    except TRANSIENT as exc:
        retries = self.request.retries
        if retries >= RETRIES:  # left to the stale-job sweep
            log.error("generations %s: %s; given up after %d tries", generation_ids, exc, retries + 1)
            raise
        log.warning("generations %s: %s; trying again (%d of %d)", generation_ids, exc, retries + 1, RETRIES)
        raise self.retry(
            exc=exc,
            max_retries=RETRIES,
            countdown=get_exponential_backoff_interval(FIRST_WAIT, retries, LONGEST_WAIT, full_jitter=True),
            args=(generation_ids, status_message_id),
            kwargs={"tried_by": [*tried_by, generations.runner()]},
        ) from None


async def _run_generation(generation_ids, status_message_id, tried_by):
    # A try that failed after taking the job may have made its image: the job is ended, not made again.
    if tried_by and await housekeeping.end_left_running(
        generation_ids, tried_by, ErrorCode.INTERRUPTED, "its try failed"
    ):
        return
    job = asyncio.ensure_future(jobs.run_generation_standalone(generation_ids, status_message_id))
    with _soft_limit_cancels(job) as overran:
        try:
            await job
        except asyncio.CancelledError:
            if not overran:
                raise
    if overran:
        log.warning("generations %s stopped at the soft time limit (%.0f s)", generation_ids, SOFT_LIMIT)
        await housekeeping.end_left_running(
            generation_ids, [generations.runner()], ErrorCode.TIMEOUT, "over its time limit"
        )


@contextmanager
def _soft_limit_cancels(job: asyncio.Future) -> Iterator[list[bool]]:
    """While the block runs, Celery's soft time limit (SIGUSR1 from the prefork pool) cancels `job`, instead of
    raising SoftTimeLimitExceeded wherever the event loop happens to be, where nothing would close the job.
    The list it gives is not empty once the limit was hit."""
    hit: list[bool] = []
    if signal.getsignal(SIG_SOFT_TIMEOUT) is not soft_timeout_sighandler:  # a pool without time limits (solo)
        yield hit
        return
    loop = asyncio.get_running_loop()

    def stop(signum: int, frame: Any) -> None:
        hit.append(True)
        loop.call_soon_threadsafe(job.cancel)

    signal.signal(SIG_SOFT_TIMEOUT, stop)
    try:
        yield hit
    finally:
        signal.signal(SIG_SOFT_TIMEOUT, soft_timeout_sighandler)


@shared_task(name=BROADCAST_TASK, acks_late=True, ignore_result=True)
def send_broadcast_task(broadcast_id):
    asyncio.run(broadcasts.send(broadcast_id))


def _chore_task(chore: housekeeping.Chore) -> Any:
    def run() -> None:
        done = chore.do()
        if chore.tell is not None and done:
            asyncio.run(_tell(chore, done))

    run.__name__ = run.__qualname__ = chore.name
    # Chores are idempotent: a retry, or a second delivery, does only what is left to do.
    return shared_task(
        name=_chore_task_name(chore),
        ignore_result=True,
        autoretry_for=TRANSIENT,
        max_retries=RETRIES,
        **BACKOFF,
        **TIME_LIMITS,
    )(run)


def _chore_task_name(chore: housekeeping.Chore) -> str:
    return f"{__name__}.{chore.name}"


async def _tell(chore: housekeeping.Chore, done: Any) -> None:
    assert chore.tell is not None
    async with jobs.standalone_bot() as bot:
        await chore.tell(bot, done)


CHORE_TASKS = {chore.name: _chore_task(chore) for chore in housekeeping.CHORES}


def beat_schedule() -> dict[str, dict[str, Any]]:
    """celery beat's schedule (nanobot_site/celery.py): each chore's task, as often as the chore says. A round
    not started by the time of the next is dropped: the next does its work."""
    return {
        chore.name: {
            "task": _chore_task_name(chore),
            "schedule": chore.every(),
            "options": {"expires": chore.every()},
        }
        for chore in housekeeping.CHORES
    }
