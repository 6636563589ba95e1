"""What running in production needs: /healthz tells a load balancer or an orchestrator whether this
installation can work and names what can't be reached (the database, the cache, the Celery broker); the
production server serves the app, its static files and the webhook; compose.yaml puts the parts together."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from tests.conftest import WEBHOOK_SECRET, WEBHOOK_URL
from tests.fakes.processes import free_port, process_env

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


def test_redis_and_a_broker_that_answer_are_healthy(client, settings, redis_server):
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


async def test_the_production_server_answers_its_probe_serves_static_files_and_telegrams_webhook(
    default_tiers, tg, gemini, settings, tmp_path
):
    # uvicorn as compose.yaml runs it (with uvloop and httptools), on the test database and the fakes.
    settings.STATIC_ROOT = tmp_path
    await sync_to_async(call_command)("collectstatic", interactive=False, verbosity=0)
    port = free_port()
    env = process_env(
        tg, gemini, TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET, ALLOWED_HOSTS="127.0.0.1", STATIC_ROOT=tmp_path
    )
    command = [sys.executable, "-m", "uvicorn", "nanobot_site.asgi:application", "--port", str(port)]
    server = subprocess.Popen([*command, "--workers", "1", "--proxy-headers"], cwd=ROOT, env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(200):
                try:
                    health = await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert (health.status_code, health.json()["status"]) == (200, "ok")
            stylesheet = await http.get("/static/css/dashboard.css")  # no proxy needed in front
            assert stylesheet.content == (ROOT / "static/css/dashboard.css").read_bytes()
            update = tg.push_text(601, "a lantern festival by the river")
            answer = await http.post(
                WEBHOOK_URL, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
            )
            assert answer.status_code == 200
            await tg.wait_for(lambda t: t.calls_of("sendPhoto"), timeout=30, what="the photo")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert tg.calls_of("sendPhoto")[0].params["chat_id"] in (601, "601")


def compose():
    """`docker compose` (or the older `docker-compose`): only its `config`, which needs no Docker engine."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if os.environ.get("CI"):
        pytest.fail("docker compose is not installed; .ci/run should have installed it")
    pytest.skip("needs docker compose (or docker-compose)")


def compose_config(tmp_path, env, *args):
    shutil.copy(ROOT / "compose.yaml", tmp_path)
    (tmp_path / ".env").write_text(env)
    return subprocess.run(
        [*compose(), "--profile", "polling", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_the_compose_file_runs_the_web_server_the_worker_beat_and_the_polling_bot_on_postgresql_and_redis(tmp_path):
    config = compose_config(tmp_path, "SECRET_KEY=x\nPOSTGRES_PASSWORD=pw\n", "config")
    assert config.returncode == 0, config.stderr
    services = compose_config(tmp_path, "SECRET_KEY=x\nPOSTGRES_PASSWORD=pw\n", "config", "--services")
    assert set(services.stdout.split()) == {"postgres", "redis", "migrate", "web", "worker", "beat", "bot"}
    for command in ("uvicorn", "nanobot_site.asgi:application", "celery", "worker", "beat", "runbot", "migrate"):
        assert f"- {command}\n" in config.stdout
    # beat keeps its schedule where the image's unprivileged user may write (Dockerfile: /app is root's).
    assert "- --schedule\n" in config.stdout and "- /tmp/celerybeat-schedule\n" in config.stdout
    assert "DATABASE_URL: postgres://nanobot:pw@postgres:5432/nanobot" in config.stdout


def test_the_compose_file_asks_for_a_database_password(tmp_path):
    config = compose_config(tmp_path, "SECRET_KEY=x\n", "config")
    assert config.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in config.stderr
