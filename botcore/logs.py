"""Which job a log line belongs to: a job names its generation for everything logged while it runs (in
its task, the tasks it starts and the threads it hands work to), and the log filter puts that id on each
line. With LOG_FORMAT=json it is the line's `generation_id`."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_generation: ContextVar[int | None] = ContextVar("generation", default=None)


@contextmanager
def job(generation_id: int) -> Iterator[None]:
    token = _generation.set(generation_id)
    try:
        yield
    finally:
        _generation.reset(token)


class JobFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        generation_id = _generation.get()
        if generation_id is not None:
            record.generation_id = generation_id
        return True
