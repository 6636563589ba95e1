"""Prometheus scrapes GET /metrics with the token it was given: the bot's figures from the database (what
was asked for today by outcome and provider, spend, the queue, the breakers) and each process's events
(how long generations took, Telegram's 429s), summed over every process of the machine."""

import asyncio
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from accounts import days
from botcore import metrics
from botcore.models import Generation
from botcore.providers.breakers import CircuitBreaker
from tests.conftest import settled
from tests.factories import UserFactory
from tests.fakes.processes import free_port, process_env
from tests.test_bot_generation import ALICE

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-0123456789"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


@pytest.fixture
def breakers():
    """Where scrapes read the breakers from, forgotten afterwards."""
    yield metrics.read_breakers
    metrics.read_breakers(None)


def figures_of(text):
    """{(name, labels): value} of a page, parsed as Prometheus parses it."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(figures, name, **labels):
    return figures.get((name, frozenset(labels.items())), 0.0)


def scrape(client, token=TOKEN):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.status_code
    return figures_of(response.content.decode())


async def ascrape(async_client):
    response = await async_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.status_code
    return figures_of(response.content.decode())


async def scraped_until(async_client, condition, timeout=10):
    """A page on which `condition` holds: a generation is counted as its close commits, a moment after
    the row is seen closed."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition(figures := await ascrape(async_client)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not on the page within {timeout}s")
        await asyncio.sleep(0.05)
    return figures


def ask(user, status, created_at, **fields):
    return Generation.objects.create(
        user=user, chat_id=user.telegram_id, prompt="a lighthouse", status=status, created_at=created_at, **fields
    )


@pytest.mark.django_db
def test_without_a_token_configured_there_is_no_metrics_page(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404
    assert client.get("/metrics").status_code == 404


@pytest.mark.django_db
def test_a_scrape_without_the_token_is_refused(client, metrics_token):
    for authorization in ["", f"Basic {TOKEN}", "Bearer wrong-token-0123456789", f"Bearer {TOKEN[:-1]}", TOKEN]:
        refused = client.get("/metrics", HTTP_AUTHORIZATION=authorization)
        assert refused.status_code == 401, authorization
        assert refused["WWW-Authenticate"].startswith("Bearer")
        assert b"nanobot_" not in refused.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200


@pytest.mark.django_db
def test_prometheus_inside_the_network_scrapes_over_plain_http(client, metrics_token, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/login/").status_code == 301  # everyone else is sent to HTTPS
    assert scrape(client)  # not redirected: a scrape doesn't follow to HTTPS


@pytest.mark.django_db
def test_one_process_without_a_multiprocess_directory_shows_its_own_figures(client, metrics_token, settings):
    # The embedded default: no PROMETHEUS_MULTIPROC_DIR, so the page is this process's, and the database's.
    assert settings.METRICS_DIR == ""
    before = scrape(client)
    metrics.telegram_429("sendPhoto")
    metrics.telegram_429("no such method!")  # never a label made of whatever was passed
    after = scrape(client)
    assert value(after, "nanobot_telegram_429_total", method="sendPhoto") == (
        value(before, "nanobot_telegram_429_total", method="sendPhoto") + 1
    )
    assert value(after, "nanobot_telegram_429_total", method="other") == (
        value(before, "nanobot_telegram_429_total", method="other") + 1
    )
    assert value(after, "nanobot_queue_depth", status="queued") == 0
    # Prometheus asking for OpenMetrics gets it.
    response = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0"
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert any(family.name == "nanobot_queue_depth" for family in openmetrics_families(response.content.decode()))


@pytest.mark.django_db(transaction=True)  # no transaction of ours open for the other process to wait on
def test_the_blank_multiprocess_directory_of_env_example_is_the_embedded_default(tg, gemini, tmp_path):
    # scripts/run copies .env.example, whose PROMETHEUS_MULTIPROC_DIR= line prometheus-client alone would
    # take for a directory (the current one): one process, its own figures, no files anywhere.
    (tmp_path / ".env").write_text("PROMETHEUS_MULTIPROC_DIR=\n")
    env = process_env(tg, gemini, NANOBOT_ENV_FILE=tmp_path / ".env", PYTHONPATH=ROOT)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    script = (
        "import django; django.setup()\n"
        "from botcore import metrics\n"
        "metrics.telegram_429('sendPhoto')\n"
        "print(metrics.page()[0].decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    figures = figures_of(done.stdout)
    assert value(figures, "nanobot_telegram_429_total", method="sendPhoto") == 1
    assert ("nanobot_queue_depth", frozenset({("status", "queued")})) in figures  # and the database's
    assert [path.name for path in tmp_path.iterdir()] == [".env"]


async def test_a_delivered_image_is_shown_by_status_and_provider_with_its_latency_and_spend(
    bot, tg, gemini, async_client, metrics_token
):
    before = await ascrape(async_client)
    tg.push_text(ALICE, "a red fox reading a book")
    [generation] = await settled(1)

    def counted(figures):
        return value(figures, "nanobot_generation_seconds_count", provider="gemini", status="delivered") > value(
            before, "nanobot_generation_seconds_count", provider="gemini", status="delivered"
        )

    after = await scraped_until(async_client, counted)

    assert value(after, "nanobot_generations_today", status="delivered", provider="gemini") == 1
    assert value(after, "nanobot_spend_today_usd", provider="gemini") == float(generation.cost_usd) == 0.1345
    assert value(after, "nanobot_spend_month_usd") == 0.1345
    assert value(after, "nanobot_queue_depth", status="running") == 0

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("nanobot_generation_seconds_count", provider="gemini", status="delivered") == 1
    waited = grew("nanobot_generation_seconds_sum", provider="gemini", status="delivered")
    assert generation.total_latency_ms / 1000 - 0.5 <= waited < 60
    assert grew("nanobot_generation_seconds_bucket", provider="gemini", status="delivered", le="+Inf") == 1
    assert grew("nanobot_upstream_seconds_count", provider="gemini") == 1
    assert grew("nanobot_upstream_seconds_sum", provider="gemini") == pytest.approx(
        generation.upstream_latency_ms / 1000
    )


async def test_a_refusal_upstream_is_shown_as_a_failure_that_cost_nothing(bot, tg, gemini, async_client, metrics_token):
    gemini.enqueue("prompt_blocked", block_reason="PROHIBITED_CONTENT")
    before = await ascrape(async_client)
    tg.push_text(ALICE, "something the model won't draw")
    [generation] = await settled(1)
    assert generation.status == "failed"

    def counted(figures):
        return value(figures, "nanobot_generation_seconds_count", provider="none", status="failed") > value(
            before, "nanobot_generation_seconds_count", provider="none", status="failed"
        )

    after = await scraped_until(async_client, counted)
    # No provider answered with an image, so none is named; nothing was spent.
    assert value(after, "nanobot_generations_today", status="failed", provider="none") == 1
    assert value(after, "nanobot_spend_month_usd") == 0
    assert ("nanobot_generations_today", frozenset({("status", "delivered"), ("provider", "gemini")})) not in after


@pytest.mark.django_db
def test_the_queue_shows_the_jobs_waiting_and_being_made_and_how_long_the_oldest_waited(client, metrics_token):
    user, now = UserFactory(), timezone.now()
    ask(user, Generation.Status.QUEUED, now - timedelta(minutes=3))
    ask(user, Generation.Status.QUEUED, now - timedelta(seconds=5))
    ask(user, Generation.Status.RUNNING, now - timedelta(seconds=20))
    ask(user, Generation.Status.DELIVERED, now - timedelta(minutes=10), provider="gemini")

    figures = scrape(client)

    assert value(figures, "nanobot_queue_depth", status="queued") == 2
    assert value(figures, "nanobot_queue_depth", status="running") == 1
    assert 180 <= value(figures, "nanobot_oldest_queued_seconds") < 240


@pytest.mark.django_db
def test_this_months_spend_adds_its_closed_days_to_today_against_the_budget(client, metrics_token, settings):
    settings.MONTHLY_BUDGET_USD = Decimal("500")
    user, today = UserFactory(), days.today()
    first = today.replace(day=1)
    paid = {"status": Generation.Status.DELIVERED, "provider": "gemini"}
    ask(user, created_at=days.start_of(first) + timedelta(hours=1), cost_usd=Decimal("0.24"), **paid)
    ask(user, created_at=timezone.now(), cost_usd=Decimal("0.134"), **paid)
    ask(user, created_at=days.start_of(first) - timedelta(hours=1), cost_usd=Decimal("9"), **paid)  # last month

    figures = scrape(client)
    assert value(figures, "nanobot_spend_month_usd") == pytest.approx(0.374)
    assert value(figures, "nanobot_budget_month_usd") == 500
    # Read again, the closed days now come from their summaries: the same figure.
    assert value(scrape(client), "nanobot_spend_month_usd") == pytest.approx(0.374)


@pytest.mark.django_db
def test_a_breaker_is_shown_as_it_stands_when_scraped(client, metrics_token, breakers):
    now = [0.0]
    gemini = CircuitBreaker(failures=1, cooldown_seconds=60, clock=lambda: now[0])
    breakers(lambda: [("gemini", gemini.state)])
    assert value(scrape(client), "nanobot_provider_breaker_state", provider="gemini", state="closed") == 1

    gemini.allow()
    gemini.failed()
    figures = scrape(client)
    states = {
        state: value(figures, "nanobot_provider_breaker_state", provider="gemini", state=state)
        for state in metrics.BREAKER_STATES
    }
    assert states == {"closed": 0, "open": 1, "half-open": 0}
    now[0] = 61  # its cooldown over: nothing happened, yet the scrape says half-open
    figures = scrape(client)
    assert value(figures, "nanobot_provider_breaker_state", provider="gemini", state="half-open") == 1


def queue_one():
    ask(UserFactory(), Generation.Status.QUEUED, timezone.now())
    connections.close_all()  # this runs in the ORM's thread: its connection would outlive the test


def record_events(env):
    """Another process of this machine (a Celery worker, say): a generation delivered in 4 s of which the
    image API took 3, and a 429 from Telegram."""
    script = (
        "import django; django.setup()\n"
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from botcore import metrics\n"
        "from botcore.models import Generation\n"
        "made = Generation(provider='gemini', created_at=timezone.now() - timedelta(seconds=4))\n"
        "metrics.generation_ended(made, 'delivered', {'upstream_latency_ms': 3000})\n"
        "metrics.telegram_429('sendPhoto')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, timeout=60, check=True)


async def test_the_processes_of_a_machine_are_summed_whichever_web_worker_answers(
    transactional_db, tg, gemini, tmp_path
):
    # Two processes that have come and gone, and uvicorn with two workers, sharing one directory.
    await sync_to_async(queue_one)()
    env = process_env(tg, gemini, PROMETHEUS_MULTIPROC_DIR=tmp_path, METRICS_TOKEN=TOKEN, ALLOWED_HOSTS="127.0.0.1")
    await asyncio.gather(*(asyncio.to_thread(record_events, env) for _ in range(2)))
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "nanobot_site.asgi:application", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    pages = []
    try:
        for _ in range(200):
            try:
                async with httpx.AsyncClient() as http:
                    await http.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        for _ in range(6):  # a connection each: the workers take turns as the kernel hands them out
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                answer = await http.get(f"http://127.0.0.1:{port}/metrics")
            assert answer.status_code == 200
            pages.append(figures_of(answer.text))
    finally:
        server.terminate()
        server.wait(timeout=30)
    for figures in pages:
        assert value(figures, "nanobot_telegram_429_total", method="sendPhoto") == 2
        assert value(figures, "nanobot_generation_seconds_count", provider="gemini", status="delivered") == 2
        assert 8 <= value(figures, "nanobot_generation_seconds_sum", provider="gemini", status="delivered") < 30
        assert value(figures, "nanobot_generation_seconds_bucket", provider="gemini", status="delivered", le="5.0") == 2
        assert value(figures, "nanobot_upstream_seconds_sum", provider="gemini") == 6
        assert value(figures, "nanobot_queue_depth", status="queued") == 1  # the database's, read by the server
