"""What the fake servers share: a threaded HTTP server on 127.0.0.1 that hands each request to its
fake's `_handle(handler)`, an async wait that never blocks the bot's event loop, and (ImageApiFake)
the lifecycle and queue of behaviours of the fake image APIs."""

import asyncio
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, like the real APIs: a new connection per request would add client work the
    # benchmarks would then blame on the bot.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls

    def do_POST(self):
        self.server.fake._handle(self)

    do_GET = do_POST

    def log_message(self, *args):
        pass  # keep test output clean


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the listen backlog: the default 5 drops connections under a burst

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its keep-alive: normal
            super().handle_error(request, client_address)


def serve(fake) -> ThreadingHTTPServer:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False  # teardown never waits for a long poll or a slow answer
    server.fake = fake
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def shutdown(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


class ImageApiFake:
    """A fake image API: started and stopped (or used as a context manager), answering each request
    with the next queued behaviour, one of KINDS, or "image" when none is queued."""

    KINDS: frozenset[str] = frozenset()

    def __init__(self):
        self.latency = 0.0  # seconds slept per API request, in the handler thread
        self.requests = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._queue: deque[tuple[str, dict]] = deque()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self):
        self._stopping.clear()
        self._server = serve(self)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        self._stopping.set()  # cut short latency and delay sleeps
        if self._server:
            shutdown(self._server)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def enqueue(self, kind: str, **kw) -> None:
        """Queue a behaviour for one future API request (FIFO); see the fake's _kind_* methods."""
        if kind not in self.KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(self.KINDS)}")
        with self._lock:
            self._queue.append((kind, kw))

    @contextmanager
    def _in_flight(self, received):
        """Record a request and count it in flight while it is answered."""
        with self._lock:
            self.requests.append(received)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def _next_behaviour(self) -> tuple[str, dict]:
        """The queued behaviour for this request, after the fake's latency."""
        with self._lock:
            kind, kw = self._queue.popleft() if self._queue else ("image", {})
        self._stopping.wait(self.latency)
        return kind, kw


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up: a timeout, or PTB cancelling a long poll on shutdown


async def wait_until(predicate, subject, timeout: float, describe):
    """Poll predicate(subject) until truthy and return it; on timeout fail with describe()."""
    deadline = time.monotonic() + timeout
    while not (result := predicate(subject)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {describe()}")
        await asyncio.sleep(0.02)
    return result


def parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, str], list[tuple[str, str, str, bytes]]]:
    """A multipart/form-data body: its text fields, and its files as (field name, filename, content
    type, bytes) in the order sent."""
    # Split on the boundary by hand: fast and byte-exact for large binary parts.
    fields, files = {}, []
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break  # closing delimiter
        head, _, content = part.partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = BytesHeaderParser().parsebytes(head.strip() + b"\r\n\r\n")
        name = collapse_rfc2231_value(headers.get_param("name", header="content-disposition"))
        if headers.get_filename() is None:
            fields[name] = content.decode()
        else:
            files.append((name, headers.get_filename(), headers.get("Content-Type"), content))
    return fields, files
