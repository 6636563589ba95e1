"""How many image calls run at once (UPSTREAM_CONCURRENCY), and the queue beyond it: first come, first
served, each waiting call told where it stands.

An image API has its own limits (requests a minute, calls at once); past them it answers 429s or slows
everyone down. Calls beyond the limit wait here instead, and their users see their place in the queue.
The queue belongs to the running event loop: the bot's one loop, or a Celery job's own (a worker runs
one job at a time per process, so its concurrency is the worker's).
"""

import asyncio
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from django.conf import settings

# (calls ahead, seconds the wait may last) -> told to the user; called sparingly, not on every move.
Moved = Callable[[int, float], Awaitable[None]]

FIRST_GUESS_SECONDS = 20.0  # one image call, until calls have been timed


class Queue:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.call_seconds = FIRST_GUESS_SECONDS  # moving average of the calls made

    def estimate(self, ahead: int) -> float:
        """Seconds until a call with `ahead` calls waiting before it starts: that many plus one must end,
        `limit` at a time."""
        return (ahead + 1) * self.call_seconds / self.limit

    @asynccontextmanager
    async def turn(self, moved: Moved | None = None, every: float = 5.0) -> AsyncIterator[None]:
        """Hold one of the `limit` slots while the block runs; wait for one first when all are taken,
        telling `moved` where the call stands at once and then every `every` seconds it has moved."""
        if self.running < self.limit and not self.waiting:
            self.running += 1
        else:
            ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting.append(ticket)
            try:
                await self._wait(ticket, moved, every)
            except BaseException:
                if ticket in self.waiting:
                    self.waiting.remove(ticket)
                elif ticket.done() and not ticket.cancelled():  # its slot came as it was cancelled
                    self._release()
                raise
        started = time.monotonic()
        try:
            yield
        finally:
            self.call_seconds = 0.8 * self.call_seconds + 0.2 * (time.monotonic() - started)
            self._release()

    async def _wait(self, ticket: "asyncio.Future[None]", moved: Moved | None, every: float) -> None:
        told = None
        while not ticket.done():
            ahead = self.waiting.index(ticket)
            if moved is not None and ahead != told:
                await moved(ahead, self.estimate(ahead))
                told = ahead
            await asyncio.wait({ticket}, timeout=every)

    def _release(self) -> None:
        """Hand the slot to the first call waiting, or free it."""
        while self.waiting:
            ticket = self.waiting.popleft()
            if not ticket.done():
                ticket.set_result(None)
                return
        self.running -= 1


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Queue] = weakref.WeakKeyDictionary()


def for_this_loop() -> Queue:
    loop = asyncio.get_running_loop()
    if loop not in _per_loop:
        _per_loop[loop] = Queue(settings.UPSTREAM_CONCURRENCY)
    return _per_loop[loop]
