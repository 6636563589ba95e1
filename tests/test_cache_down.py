"""The cache only saves work: with its server down the bot still serves and charges every prompt,
and the operator is told once, not once a request."""

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache

from accounts.models import QuotaUsage
from tests.conftest import settled
from tests.fakes.processes import process_env

ROOT = Path(__file__).resolve().parent.parent
CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens on port 1
CACHE_DOWN = {"default": {"BACKEND": "nanobot_site.cache.RedisCache", "LOCATION": CLOSED_PORT}}


def charged():
    return sorted(QuotaUsage.objects.values_list("user__telegram_id", "used", "reserved"))


@pytest.mark.bot_settings(CACHES=CACHE_DOWN)
async def test_with_the_cache_down_prompts_are_served_charged_once_and_the_operator_told_once(bot, tg, gemini, caplog):
    tg.push_text(601, "a lighthouse in a storm")
    tg.push_text(602, "a cat in a space suit")
    generations = await settled(2, timeout=30)
    tg.push_text(601, "a second lighthouse, at dawn")
    generations = await settled(3, timeout=30)

    assert [g.status for g in generations] == ["delivered"] * 3
    assert len(tg.calls_of("sendPhoto")) == 3 and len(gemini.requests) == 3
    assert await sync_to_async(charged)() == [(601, 2, 0), (602, 1, 0)]
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "nanobot_site.cache"]
    assert "going on without it" in warning.getMessage()


@pytest.mark.bot_settings(CACHES=CACHE_DOWN, GEMINI_API_KEY="revoked", ADMIN_TELEGRAM_IDS=[9000])
async def test_with_the_cache_down_the_admins_still_hear_of_a_rejected_key_and_only_once(bot, tg, gemini):
    await sync_to_async(cache.clear)()  # what this process noted while the server was down, in another test
    tg.push_text(601, "a harbour at night")
    tg.push_text(602, "a harbour at dawn")
    await settled(2, timeout=30)

    def alerts(tg):
        return [c for c in tg.calls_of("sendMessage") if c.params["chat_id"] == 9000]

    await tg.wait_for(alerts, what="the admins' alert")
    await asyncio.sleep(0.5)
    [alert] = alerts(tg)
    assert "rejected our credentials" in alert.params["text"]


def test_a_redis_cache_url_gets_the_cache_that_survives_its_server_going_down(tg, gemini):
    env = process_env(tg, gemini, CACHE_URL=CLOSED_PORT, LOG_LEVEL="WARNING")
    script = "from django.core.cache import cache; cache.set('k', 1); print(cache.get('k', 'missed'))"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout == "missed\n", result.stderr
    [warning] = result.stderr.splitlines()
    assert "The cache server can't be reached" in warning
