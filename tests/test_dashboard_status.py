"""The overview's status panel tells an operator, at a glance and in words, whether the bot is working:
its processes by their heartbeats, stuck jobs, failing providers and spend against the budget."""

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.utils import timezone
from django.utils.html import strip_tags

from botcore import providers
from botcore.models import Generation, Heartbeat
from botcore.providers.breakers import CircuitBreaker
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


CHECK = re.compile(r'<li class="check check-(\w+)">(.*?)</li>\s*(?=<li class="check|</ul>\s*</section)', re.S)


def panel(client):
    """{check's name: (level, its words)} as the overview shows them."""
    found = {}
    for level, item in CHECK.findall(client.get("/").content.decode()):
        name = re.search(r"<b>(.*?)</b>", item).group(1)
        found[name] = (level, " ".join(unescape(strip_tags(item)).split()))
    return found


def heartbeat(kind, silent_for=timedelta(seconds=5), name=None):
    beat_at = timezone.now() - silent_for
    Heartbeat.objects.create(
        name=name or f"host:{kind}", kind=kind, started_at=beat_at - timedelta(hours=1), beat_at=beat_at
    )


def running_job(lease_left=timedelta(seconds=20)):
    now = timezone.now()
    return Generation.objects.create(
        user=UserFactory(), chat_id=1, prompt="a cat", status="running", started_at=now, lease_until=now + lease_left
    )


def test_with_no_heartbeat_the_panel_says_the_bot_is_down_and_how_to_start_it(admin_client):
    level, words = panel(admin_client)["Bot"]
    assert level == "bad" and "✗ Action needed" in words
    assert "No bot has been heard from in the last day. Start it with python manage.py runbot." in words


def test_a_bot_that_went_silent_is_down_since_its_last_heartbeat(admin_client, settings):
    settings.TIME_ZONE = "UTC"
    heartbeat("bot", silent_for=timedelta(minutes=10))
    level, words = panel(admin_client)["Bot"]
    since = (timezone.now() - timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M")
    assert level == "bad" and f"No bot has been heard from since {since} UTC" in words


def test_a_fresh_heartbeat_shows_the_bot_up(admin_client):
    heartbeat("bot")
    level, words = panel(admin_client)["Bot"]
    assert level == "ok" and "✓ OK" in words and "1 running, last heartbeat" in words
    assert "Celery workers" not in panel(admin_client)  # no broker: the bot runs the jobs itself


def test_a_job_marked_running_with_no_live_bot_is_flagged_stuck(admin_client):
    running_job()
    level, words = panel(admin_client)["Jobs"]
    assert level == "bad" and "0 running, 1 stuck" in words
    assert "1 job is marked running, but no live bot or worker is making it" in words

    heartbeat("bot")
    assert panel(admin_client)["Jobs"] == ("ok", "Jobs ✓ OK 0 queued, 1 running.")


def test_a_job_whose_lease_ran_out_is_stuck_even_with_a_bot_alive(admin_client):
    heartbeat("bot")
    running_job(lease_left=timedelta(seconds=-60))
    assert panel(admin_client)["Jobs"][0] == "bad"


def test_with_celery_a_missing_worker_and_a_silent_beat_are_named(admin_client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    heartbeat("bot")
    heartbeat("beat", silent_for=timedelta(hours=2))
    checks = panel(admin_client)
    level, words = checks["Celery workers"]
    assert level == "bad" and "Jobs queue up until a worker takes them." in words
    assert checks["Celery beat"][0] == "bad" and "Housekeeping has stopped" in checks["Celery beat"][1]

    heartbeat("worker")
    heartbeat("beat", name="host:beat:2")
    checks = panel(admin_client)
    assert checks["Celery workers"][0] == checks["Celery beat"][0] == "ok"


def test_an_open_breaker_shows_and_says_where_requests_go(admin_client, settings):
    gemini = providers._breakers["gemini"] = CircuitBreaker(failures=1, cooldown_seconds=60)
    gemini.failed()
    level, words = panel(admin_client)["Gemini"]
    assert level == "bad" and "Gemini is failing and there is no fallback" in words

    settings.IMAGE_PROVIDERS = ["gemini", "openai"]
    providers._breakers["openai"] = CircuitBreaker()
    checks = panel(admin_client)
    assert checks["Gemini"][0] == "warn" and "requests go to the fallback (OpenAI)" in checks["Gemini"][1]
    assert checks["OpenAI"][0] == "ok"


def test_a_breaker_the_dashboard_cannot_see_is_unknown_not_fine(admin_client):
    level, words = panel(admin_client)["Gemini"]
    assert level == "info" and "Not known here." in words


def spent_today(amount):
    Generation.objects.create(user=UserFactory(), chat_id=1, prompt="p", status="delivered", cost_usd=amount)


def test_spend_over_the_budget_reads_red_with_what_to_do(admin_client, settings):
    settings.MONTHLY_BUDGET_USD = Decimal("10")
    spent_today("12.50")
    level, words = panel(admin_client)["Spend this month"]
    assert level == "bad" and "$12.50 of the $10.00 budget (125%)" in words
    assert "new images are refused until next month" in words and "Raise MONTHLY_BUDGET_USD" in words
    assert panel(admin_client)["Spend today"][0] == "warn"  # well over the day's share


def test_a_spent_daily_budget_reads_red_until_midnight(admin_client, settings):
    settings.MONTHLY_BUDGET_USD, settings.DAILY_BUDGET_USD = None, Decimal("2")
    spent_today("2.00")
    checks = panel(admin_client)
    assert "Spend this month" not in checks
    level, words = checks["Spend today"]
    assert level == "bad" and "$2.00 of today's $2.00 budget (100%)" in words
    assert "refused until midnight (UTC)" in words


def test_spend_past_80_percent_of_the_budget_reads_amber(admin_client, settings):
    settings.MONTHLY_BUDGET_USD = Decimal("1000")
    spent_today("850")
    level, words = panel(admin_client)["Spend this month"]
    assert level == "warn" and "Over 80% of this month's budget is spent" in words


def test_without_a_budget_the_panel_says_how_to_set_one(admin_client, settings):
    settings.MONTHLY_BUDGET_USD = None
    level, words = panel(admin_client)["Spend this month"]
    assert level == "info" and "set MONTHLY_BUDGET_USD" in words
