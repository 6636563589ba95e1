import asyncio
import importlib
import os
import shutil
import socket

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connections
from django.utils import translation

from botcore import providers, views
from botcore.models import Generation
from botcore.telegram.application import build_application, start, stop
from tests.fakes import FakeGemini, FakeTelegram
from tests.fakes.processes import BOT_TOKEN, GEMINI_KEY


@pytest.fixture(autouse=True, scope="session")
def kept_results_are_removed():
    yield
    shutil.rmtree(django_settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()  # e.g. the once-per-ten-minutes admin alert must not leak between tests
    providers._breakers.clear()  # a provider that failed in one test is not down in the next
    yield
    translation.deactivate()  # a request in Chinese leaves its language active on this thread


@pytest.fixture
def redis_server():
    """Redis on 127.0.0.1:6379, which .ci/run starts: without it a test fails in CI and is skipped elsewhere."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        if os.environ.get("CI"):
            pytest.fail("Redis is not running on 127.0.0.1:6379; .ci/run should have started it")
        pytest.skip("needs Redis on 127.0.0.1:6379")


@pytest.fixture
def tg():
    with FakeTelegram(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def gemini():
    with FakeGemini(api_key=GEMINI_KEY) as fake:
        yield fake


@pytest.fixture
def bot_settings(request, settings, tg, gemini):
    """Point the bot at the fakes; `@pytest.mark.bot_settings(NAME=value)` changes more before it starts."""
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    settings.TELEGRAM_BASE_URL = tg.base_url
    settings.TELEGRAM_BASE_FILE_URL = tg.base_file_url
    settings.GEMINI_API_KEY = GEMINI_KEY
    settings.GEMINI_BASE_URL = gemini.base_url
    for marker in request.node.iter_markers("bot_settings"):
        for name, value in marker.kwargs.items():
            setattr(settings, name, value)
    return settings


@pytest.fixture
def default_tiers(transactional_db):
    """The tiers the data migration makes; transactional tests flush them, so make them again."""
    migration = importlib.import_module("accounts.migrations.0002_default_tiers")
    migration.create_tiers(django_apps, None)


@pytest.fixture
async def bot(default_tiers, bot_settings):
    """The real bot application long-polling the fake Bot API, as `runbot` runs it."""
    application = build_application()
    await start(application)
    await application.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield application
    finally:
        await application.updater.stop()
        await stop(application)
        # The ORM ran in sync_to_async's worker thread; close its connection there.
        await sync_to_async(connections.close_all)()


WEBHOOK_SECRET = "webhook-secret-0123456789"
WEBHOOK_URL = "/telegram/webhook/"


@pytest.fixture
async def webhook(default_tiers, bot_settings):
    """The webhook on, with the bot started by the first update it receives."""
    bot_settings.TELEGRAM_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield
    await views.stop_application()
    await sync_to_async(connections.close_all)()  # the ORM's worker thread has its own connection


async def settled(count=1, timeout=10):
    """Wait until `count` generations have reached a final status; return them, oldest first."""

    def finished():
        return list(
            Generation.objects.exclude(status__in=Generation.OPEN).select_related("user").order_by("created_at", "pk")
        )

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        done = await sync_to_async(finished)()
        if len(done) >= count:
            return done
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {len(done)} of {count} generations finished in {timeout}s")
        await asyncio.sleep(0.02)
