"""Housekeeping: the chores done besides serving updates.

Jobs a dead process left open are failed (quota released, users told), old results, update ids and
silent processes are forgotten, and each day that closed is summed up for the reports. Each chore is
defined once, in CHORES (what it calls, how often), and has two schedulers: celery beat when a broker is
configured (a Celery task per chore, botcore/tasks.py), else the bot's own loop (`done_here`).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django import db
from django.conf import settings
from telegram import Bot

from accounts import credits
from accounts import payments as sales
from botcore import activity, connections, generations, heartbeats, results, summaries
from botcore.errors import ErrorCode
from botcore.models import Generation
from botcore.periodic import repeating

from . import payments, updates
from .jobs import standalone_bot, tell_failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chore:
    """Work done on a schedule: `do`, a plain function, every `rounds` HOUSEKEEPING_SECONDS; then, when it
    returns something, `tell(bot, what it returned)`: the part that needs Telegram (users to tell, say)."""

    name: str  # its Celery task is botcore.tasks.<name>
    do: Callable[[], Any]
    rounds: int = 1
    tell: Callable[[Bot, Any], Awaitable[Any]] | None = None

    def every(self) -> float:
        return self.rounds * settings.HOUSEKEEPING_SECONDS


async def tell_expired(bot: Bot, expired: Sequence[Generation]) -> None:
    for generation in expired:
        await tell_failure(bot, generation, ErrorCode.INTERRUPTED)
    log.warning("released the quota of %d generations left unfinished", len(expired))


CHORES = (
    # Jobs whose runner died (their lease ran out) or that were never started: failed, quota released, users told.
    Chore("expire_stale_jobs", generations.expire_stale, tell=tell_expired),
    Chore("purge_old_results", results.purge_old),  # up to 500 files a round
    Chore("forget_old_updates", updates.forget_old),
    # A report sums up the closed days it needs itself; this does it ahead, soon after a day closes.
    Chore("sum_up_closed_days", summaries.sum_up_closed_days, rounds=10),
    Chore("sum_up_active_users", activity.sum_up_closed_days, rounds=10),  # likewise for the analytics page
    Chore("forget_silent_processes", heartbeats.forget_old, rounds=60),  # those silent for a day
    Chore("expire_credits", credits.expire_due, rounds=10),
    Chore("end_tier_upgrades", sales.end_upgrades),
    # Payments whose update was lost are found in the bot's Star transactions (a bot that sells, only).
    Chore("sweep_star_payments", payments.anything_sold, rounds=10, tell=payments.sweep),
)


async def expire_stale(bot: Bot) -> int:
    """Fail the jobs a crashed bot or worker left open, give their quota back and tell their users."""
    expired = await sync_to_async(generations.expire_stale)()
    if expired:
        await tell_expired(bot, expired)
    return len(expired)


@asynccontextmanager
async def done_here(bot: Bot) -> AsyncIterator[None]:
    """While the block runs (the bot's life), the chores are done in this process, each at once and then as
    often as it says, and the jobs a bot that died was running are failed as soon as their leases run out.

    Not with a broker: celery beat does the chores then, and the bot runs no jobs (Celery workers do). A second
    scheduler here, in each web worker the bot lives in, would only do them again."""
    if settings.CELERY_BROKER_URL:
        yield
        return
    async with AsyncExitStack() as chores:
        for chore in CHORES:
            await chores.enter_async_context(repeating(partial(_do_here, chore, bot), chore.every()))
        chores.callback(asyncio.create_task(recover_abandoned(bot)).cancel)
        yield


async def _do_here(chore: Chore, bot: Bot) -> None:
    try:
        done = await _off_the_orms_thread(chore.do)
        if chore.tell is not None and done:
            await chore.tell(bot, done)
    except Exception:
        log.exception("housekeeping: %s failed", chore.name)


@sync_to_async(thread_sensitive=False)
def _off_the_orms_thread(work: Callable[[], Any]) -> Any:
    """Not on the thread the bot's queries share: the first day summaries read three months of rows. The
    connection goes with the work: the next round may run in another thread."""
    try:
        return work()
    finally:
        db.connections.close_all()


async def recover_abandoned(bot: Bot) -> None:
    """At start: the jobs a bot that died was running are failed, their status messages turned into an
    apology and their quota released, as soon as their leases run out (at most JOB_LEASE_SECONDS), instead
    of at the next stale sweep."""
    try:  # the sweep's first round, at start, took those whose leases had run out already
        await asyncio.sleep(settings.JOB_LEASE_SECONDS + 1)
        await sync_to_async(connections.make_usable)()
        await expire_stale(bot)
    except Exception:
        log.exception("recovering abandoned generations failed")


def close_left_running(
    generation_ids: Sequence[int], runners: Sequence[str], code: ErrorCode, detail: str
) -> list[Generation]:
    """Fail those of these generations that one of `runners` took and left running, releasing their quota;
    those closed here. For a Celery job stopped at its time limit, or whose try ended in an error after it had
    taken the job: its image may have been made (and paid for), so the job is ended, not run again."""
    held = Generation.objects.filter(pk__in=generation_ids, status=Generation.Status.RUNNING, runner__in=runners)
    return [
        generation
        for generation in held.select_related("user").order_by("pk")
        if generations.finish(generation, Generation.Status.FAILED, error_code=code, error_message=detail)
    ]


async def end_left_running(generation_ids: Sequence[int], runners: Sequence[str], code: ErrorCode, detail: str) -> int:
    """`close_left_running`, and its user told, with a Bot of its own (outside the bot's process: a Celery
    worker); how many generations were closed."""
    await sync_to_async(connections.make_usable)()
    closed = await sync_to_async(close_left_running)(generation_ids, runners, code, detail)
    if closed:  # one job: its status message becomes the apology, once
        async with standalone_bot() as bot:
            await tell_failure(bot, closed[0], code)
    return len(closed)
