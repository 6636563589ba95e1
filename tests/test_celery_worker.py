"""With a broker configured, the bot hands jobs to a real Celery worker process."""

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from nanobot_site.celery import app as celery_app
from tests.conftest import BOT_TOKEN, GEMINI_KEY, settled
from tests.test_bot_generation import ALICE

ROOT = Path(__file__).resolve().parent.parent
REDIS = ("127.0.0.1", 6379)
BROKER_URL = "redis://127.0.0.1:6379/15"
QUEUE = f"nanobot-test-{uuid.uuid4().hex[:8]}"


def redis_is_up():
    try:
        socket.create_connection(REDIS, timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def broker():
    if not redis_is_up():
        if os.environ.get("CI"):
            pytest.fail("Redis is not running on 127.0.0.1:6379; .ci/run should have started it")
        pytest.skip("needs Redis on 127.0.0.1:6379")
    # The Celery app read its configuration once, at import; point it at the test broker.
    saved = celery_app.conf.broker_url, celery_app.conf.task_default_queue
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = BROKER_URL, QUEUE
    yield BROKER_URL
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = saved


def worker_database_url():
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(broker, tg, gemini, transactional_db):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nanobot_site.settings",
        "NANOBOT_ENV_FILE": "",
        "SECRET_KEY": "worker-test",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_QUEUE": QUEUE,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_BASE_URL": tg.base_url,
        "TELEGRAM_BASE_FILE_URL": tg.base_file_url,
        "GEMINI_API_KEY": GEMINI_KEY,
        "GEMINI_BASE_URL": gemini.base_url,
    }
    command = [sys.executable, "-m", "celery", "-A", "nanobot_site", "worker", "--pool=solo", "--loglevel=INFO",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.bot_settings(CELERY_BROKER_URL=BROKER_URL)
async def test_job_runs_in_the_worker_and_the_photo_is_delivered(worker, bot, tg, gemini):
    tg.push_text(ALICE, "a tram in the rain")

    [generation] = await settled(1, timeout=60)

    assert generation.status == "delivered"
    assert len(tg.calls_of("sendPhoto")) == 1
    worker.terminate()
    log = worker.communicate(timeout=15)[0]
    assert "botcore.tasks.run_generation_task" in log and "succeeded" in log
