"""/cancel: a user stops their jobs. Those not started are closed in the database (any process's);
image calls running in this process are cancelled, and their job closes its generations."""

import asyncio
from contextlib import contextmanager
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async

from botcore import generations


@dataclass(eq=False)
class Stop:
    """A job's image calls, which its user may stop (/cancel) until they are over."""

    requested: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: "asyncio.Future[int]" = field(default_factory=lambda: asyncio.get_running_loop().create_future())


_stoppable_jobs: dict[int, set[Stop]] = {}  # by the user's Telegram id


@contextmanager
def stoppable(telegram_id):
    """While the block runs, the job's image calls are this user's to stop."""
    stop = Stop()
    _stoppable_jobs.setdefault(telegram_id, set()).add(stop)
    try:
        yield stop
    finally:
        jobs = _stoppable_jobs[telegram_id]
        jobs.discard(stop)
        if not jobs:
            del _stoppable_jobs[telegram_id]
        if not stop.stopped.done():  # its calls were over first
            stop.stopped.set_result(0)


async def unless_stopped(stop, calls):
    """(each call's answer or exception, whether the user stopped them first). A stopped call is
    cancelled; an answer that came before the stop is kept, so what it cost is logged."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    answers = asyncio.gather(*tasks, return_exceptions=True)
    requested = asyncio.ensure_future(stop.requested.wait())
    try:
        await asyncio.wait({answers, requested}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        answers.cancel()
        raise
    finally:
        requested.cancel()
    if answers.done():
        return answers.result(), False
    for task in tasks:
        task.cancel()
    return await answers, True


async def stop_for(telegram_id):
    """/cancel: stop this user's jobs that haven't started and the image calls running here, releasing
    their quota. (images stopped, images too far along to stop)."""
    running_here = list(_stoppable_jobs.get(telegram_id, ()))
    for stop in running_here:
        stop.requested.set()
    stopped = len(await sync_to_async(generations.cancel_queued)(telegram_id))
    stopped += sum(await asyncio.gather(*(asyncio.shield(stop.stopped) for stop in running_here)))
    return stopped, await sync_to_async(generations.running_count)(telegram_id)
