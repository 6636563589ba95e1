"""Work repeated in the background while a block of code runs."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress


@asynccontextmanager
async def repeating(action: Callable[[], Awaitable[object]], every: float) -> AsyncIterator[None]:
    """Await `action()` at once and then every `every` seconds until the block ends."""

    async def repeat() -> None:
        while True:
            await action()
            await asyncio.sleep(every)

    task = asyncio.create_task(repeat())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
