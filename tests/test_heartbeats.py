"""Operators can see which processes serve the bot: each writes a heartbeat, and one that stops
beating shows as silent, then is forgotten."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from botcore import generations, heartbeats
from botcore.models import Heartbeat


async def listed(kind, timeout=10):
    for _ in range(int(timeout / 0.1)):
        found = [p for p in await sync_to_async(heartbeats.processes)() if p.kind == kind]
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} heartbeat in {timeout}s")


async def test_the_running_bot_is_listed_alive(bot):
    [process] = await listed("bot")
    assert (process.name, process.alive) == (generations.runner(), True)


@pytest.mark.django_db
def test_a_process_that_stopped_beating_is_listed_silent_then_forgotten():
    now = timezone.now()
    for name, silent_for in (("fresh", 10), ("stalled", 120), ("gone", 2 * 24 * 3600)):
        beat_at = now - timedelta(seconds=silent_for)
        Heartbeat.objects.create(name=name, kind="worker", started_at=beat_at, beat_at=beat_at)

    assert [(p.name, p.alive) for p in heartbeats.processes(now)] == [("fresh", True), ("stalled", False)]
    assert heartbeats.forget_old() == 1
    assert set(Heartbeat.objects.values_list("name", flat=True)) == {"fresh", "stalled"}
