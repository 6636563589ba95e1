"""Housekeeping: what the bot does every minute and at start, besides serving updates.

Jobs a dead process left open are failed (quota released, users told), old results and update ids
are forgotten, and each day that closed is summed up for the reports.
"""

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from telegram import Bot

from botcore import connections, generations, heartbeats, results, summaries
from botcore.errors import ErrorCode

from . import updates
from .jobs import tell_failure

log = logging.getLogger(__name__)


async def expire_stale(bot: Bot) -> int:
    """Fail the jobs a crashed bot or worker left open, give their quota back and tell their users."""
    expired = await sync_to_async(generations.expire_stale)()
    for generation in expired:
        await tell_failure(bot, generation, ErrorCode.INTERRUPTED)
    if expired:
        log.warning("released the quota of %d generations left unfinished", len(expired))
    return len(expired)


async def recover_abandoned(bot: Bot) -> None:
    """At start: the jobs a process that died was running are failed, their status messages turned
    into an apology and their quota released, as soon as their leases run out (at most
    JOB_LEASE_SECONDS, twice that for a Celery worker's), instead of at the next stale sweep."""
    try:  # the sweeper's first round, at start, took those whose leases had run out already
        await asyncio.sleep(settings.JOB_LEASE_SECONDS * (2 if settings.CELERY_BROKER_URL else 1) + 1)
        await sync_to_async(connections.make_usable)()
        await expire_stale(bot)
    except Exception:
        log.exception("recovering abandoned generations failed")


async def sweep_stale_forever(bot: Bot, every_seconds: float = 60) -> None:
    """Every minute: expire stale jobs, purge old results and update ids; once a day, sum up the day
    that closed."""
    summed_up_before = None
    while True:
        try:
            await sync_to_async(connections.make_usable)()
            await expire_stale(bot)
            await sync_to_async(results.purge_old)()
            await sync_to_async(updates.forget_old)()
            await sync_to_async(heartbeats.forget_old)()
            if summed_up_before != (first_open := await sync_to_async(summaries.first_open_day)()):
                await _sum_up_closed_days()
                summed_up_before = first_open
        except Exception:
            log.exception("sweeping stale generations failed")
        await asyncio.sleep(every_seconds)


@sync_to_async(thread_sensitive=False)
def _sum_up_closed_days() -> None:
    """Off the thread the bot's other queries share: the first time, it reads three months of rows."""
    try:
        summaries.sum_up_closed_days()
    finally:
        connection.close()
