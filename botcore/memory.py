"""Bounding how much image data the process holds at once.

Fifty 4K answers arriving together would otherwise be fifty copies of 12 MB images, their
base64 text and their decoded pixels in memory at the same moment.
"""

import asyncio
import ctypes
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

MB = 1024 * 1024
# Answers read and decoded at once: each briefly needs about 4x the image (JSON, base64, bytes).
READING_SLOTS = 3
# Megabytes of images being prepared and uploaded at once; many small ones, or two 4K ones.
DELIVERY_BUDGET_MB = 200


class Budget:
    """A semaphore counted in megabytes: a task holds what its work needs, and waits for it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.available = capacity
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        amount = max(1, min(amount, self.capacity))  # a job bigger than the budget runs alone
        async with self._changed:
            await self._changed.wait_for(lambda: self.available >= amount)
            self.available -= amount
        try:
            yield
        finally:
            async with self._changed:
                self.available += amount
                self._changed.notify_all()


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, Budget]] = (
    weakref.WeakKeyDictionary()
)


def for_this_loop() -> tuple[asyncio.Semaphore, Budget]:
    """(reading slots, delivery budget) of the running event loop: asyncio primitives belong to one loop,
    and a Celery worker runs each job in a loop of its own."""
    loop = asyncio.get_running_loop()
    if loop not in _per_loop:
        _per_loop[loop] = (asyncio.Semaphore(READING_SLOTS), Budget(DELIVERY_BUDGET_MB))
    return _per_loop[loop]


def return_freed_images_to_the_os() -> None:
    """Make glibc give large freed buffers back to the OS at once.

    glibc raises its mmap threshold each time a large buffer is freed, after which buffers of
    that size come from the heap and stay counted in the process's memory after being freed:
    about 300 MB more for 50 4K jobs. Fixing the threshold at 1 MB keeps every image buffer
    mmap'd. No effect off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_MMAP_THRESHOLD = -3
    libc.mallopt(M_MMAP_THRESHOLD, MB)
