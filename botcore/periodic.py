"""Work repeated in the background while a block of code runs."""

import asyncio
from contextlib import asynccontextmanager, suppress


@asynccontextmanager
async def repeating(action, every):
    """Await `action()` at once and then every `every` seconds until the block ends."""

    async def repeat():
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
