"""Which processes serve the bot right now. The bot (polling, or inside the web server behind the
webhook), every Celery worker and celery beat write a heartbeat every EVERY_SECONDS, from when they
start; `processes()` reads them, so an operator can see what is alive and since when, and what went silent."""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from . import connections, generations
from .models import Heartbeat

log = logging.getLogger(__name__)

EVERY_SECONDS = 15
# Silent this long (three missed beats): not alive. Silent this long: forgotten.
SILENT_AFTER = timedelta(seconds=3 * EVERY_SECONDS)
FORGOTTEN_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Process:
    name: str
    kind: str
    started_at: datetime
    beat_at: datetime
    alive: bool


def beat(kind: str) -> None:
    """This process is alive (one UPDATE; an INSERT the first time)."""
    connections.make_usable()
    now = timezone.now()
    name = generations.runner()
    if not Heartbeat.objects.filter(name=name).update(beat_at=now):
        Heartbeat.objects.create(name=name, kind=kind, started_at=now, beat_at=now)


def processes(now: datetime | None = None) -> list[Process]:
    """The processes heard from in the last day, the live ones first, each kind's newest first."""
    now = now or timezone.now()
    heard = Heartbeat.objects.filter(beat_at__gte=now - FORGOTTEN_AFTER).order_by("kind", "-beat_at")
    found = [
        Process(row.name, row.kind, row.started_at, row.beat_at, alive=row.beat_at >= now - SILENT_AFTER)
        for row in heard
    ]
    return sorted(found, key=lambda process: not process.alive)


def forget_old() -> int:
    """Forget the processes silent for a day; how many."""
    deleted, _ = Heartbeat.objects.filter(beat_at__lt=timezone.now() - FORGOTTEN_AFTER).delete()
    return deleted


def beat_safely(kind: str) -> None:
    try:
        beat(kind)
    except Exception as exc:  # the database is down or busy: the next beat tries again
        log.warning("heartbeat not written: %s", exc)


def beat_in_background(kind: str) -> threading.Thread:
    """For a process with no event loop of its own (a Celery worker, celery beat): a thread that beats until
    it exits."""

    def forever() -> None:
        while True:
            beat_safely(kind)
            time.sleep(EVERY_SECONDS)

    thread = threading.Thread(target=forever, name="heartbeat", daemon=True)
    thread.start()
    return thread
