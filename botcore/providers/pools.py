"""Connections to the image APIs: several small pools instead of one large one.

httpcore's pool looks at every connection it holds, for every connection, each time a request starts or
ends (encode/httpcore#1035, open): with 100 connections in one pool that bookkeeping took 28% of the bot's
CPU in a 200-user burst. Pools of about ten connections each keep it small; each call goes to the pool
with the fewest calls in flight, so with at most UPSTREAM_CONCURRENCY calls at once none waits in a pool.
"""

import math
from collections.abc import AsyncIterator, Callable

import httpx

CONNECTIONS_PER_POOL = 10


class Pools(httpx.AsyncBaseTransport):
    def __init__(self, connections: int) -> None:
        count = max(1, math.ceil(connections / CONNECTIONS_PER_POOL))
        size = math.ceil(connections / count)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(count)]
        self.in_flight = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.pools)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        try:
            response = await self.pools[index].handle_async_request(request)
        except BaseException:
            self.in_flight[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        # The call holds its connection until its body is read and closed.
        response.stream = _Counted(response.stream, lambda: self._done(index))
        return response

    def _done(self, index: int) -> None:
        self.in_flight[index] -= 1

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


class _Counted(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, done: Callable[[], None]) -> None:
        self.stream = stream
        self.done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self.stream.aclose()
        finally:
            if self.done is not None:
                self.done()
                self.done = None
