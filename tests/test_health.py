"""/healthz tells a load balancer or an orchestrator whether this installation can work, and names
what can't be reached: the database, the cache, the Celery broker."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens on port 1
REDIS = "redis://127.0.0.1:6379/14"

pytestmark = pytest.mark.django_db


def redis_cache(location):
    return {"default": {"BACKEND": "nanobot_site.cache.RedisCache", "LOCATION": location}}


def probe(client):
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_the_embedded_default_is_healthy_without_a_broker(client):
    assert probe(client) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "not configured"}},
    )


def test_redis_and_a_broker_that_answer_are_healthy(client, settings):
    settings.CACHES = redis_cache(REDIS)
    settings.CELERY_BROKER_URL = REDIS
    assert probe(client) == (200, {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok"}})


def test_a_cache_server_that_is_down_is_named_with_a_503(client, settings):
    settings.CACHES = redis_cache(CLOSED_PORT)
    status, body = probe(client)
    assert (status, body["status"], body["checks"]["cache"]) == (503, "down", "down")
    assert body["checks"]["database"] == "ok"


def test_a_broker_that_is_down_is_named_with_a_503(client, settings):
    settings.CELERY_BROKER_URL = CLOSED_PORT
    status, body = probe(client)
    assert (status, body["checks"]) == (503, {"database": "ok", "cache": "ok", "broker": "down"})


def test_a_database_that_is_down_is_named_with_a_503_and_no_detail():
    # A process of its own, whose database server can't be reached at all.
    script = "from django.test import Client; r = Client().get('/healthz'); print(r.status_code, r.content.decode())"
    env = {
        "DJANGO_SETTINGS_MODULE": "nanobot_site.settings",
        "NANOBOT_ENV_FILE": "",
        "SECRET_KEY": "health-test",
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": "postgres://nanobot:s3cret-pw@127.0.0.1:1/nanobot",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, body = done.stdout.split(" ", 1)
    assert (status, json.loads(body)) == (
        "503",
        {"status": "down", "checks": {"database": "down", "cache": "ok", "broker": "not configured"}},
    )
    assert "s3cret-pw" not in done.stdout + done.stderr
