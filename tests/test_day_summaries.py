"""Closed days are summed up once; reports over long ranges read the sums, and stay right."""

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone

from botcore import summaries
from botcore.models import DayActivity, DaySummary, Generation
from dashboard import costreports, reports
from tests.factories import TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def made(user, days_ago, status="delivered", cost="0.134", **fields):
    when = timezone.now() - timedelta(days=days_ago)
    return Generation.objects.create(
        user=user, tier=user.tier.name, chat_id=1, prompt="p", status=status, cost_usd=cost, created_at=when, **fields
    )


def delivered_since(first):
    today = timezone.localdate()
    return sum(row["delivered"] for row in costreports.by_day(summaries.rows(first, today), first, today))


def test_closed_days_are_read_from_their_sums_once_summed():
    user = UserFactory(tier=TierFactory(name="gold"))
    made(user, 10, model="m", resolution="2K", total_latency_ms=4_000)
    made(user, 10, status="failed", cost="0", model="m", resolution="2K", error_code="safety")
    made(user, 3, cost="0.24", model="m", resolution="4K", total_latency_ms=40_000)
    today, first = timezone.localdate(), timezone.localdate() - timedelta(days=12)

    def report():
        rows = summaries.rows(first, today)
        return [
            costreports.by_day(rows, first, today),
            costreports.by_tier(rows),
            costreports.by_model(rows),
            costreports.by_user(first, today),
        ]

    before = report()
    Generation.objects.filter(created_at__lt=timezone.now() - timedelta(days=2)).delete()
    after = report()

    assert after == before
    [gold] = after[1]
    assert (gold["tier"], gold["delivered"], gold["failed"], gold["spend"]) == (
        "gold",
        2,
        1,
        Decimal("0.374"),
    )
    assert [(row["resolution"], row["delivered"]) for row in after[2]] == [("2K", 1), ("4K", 1)]


def test_top_users_add_the_open_days_to_their_summed_up_ones():
    ann, ben, cat = UserFactory(username="ann"), UserFactory(username="ben"), UserFactory(username="cat")
    for _ in range(3):
        made(ann, 6)
    for days_ago in (6, 6, 0, 1):
        made(ben, days_ago)
    made(cat, 0, cost="0.01")
    first, today = timezone.localdate() - timedelta(days=8), timezone.localdate()

    def top():
        return [(row["name"], row["delivered"], row["spend"]) for row in costreports.by_user(first, today)]

    assert top() == [("@ben", 4, Decimal("0.536")), ("@ann", 3, Decimal("0.402")), ("@cat", 1, Decimal("0.01"))]
    made(ann, 0)
    made(ann, 0, cost="0.24")
    assert top()[:2] == [("@ann", 5, Decimal("0.776")), ("@ben", 4, Decimal("0.536"))]


def test_yesterday_is_summed_up_once_the_stale_sweep_is_well_past_midnight(settings):
    made(UserFactory(), 1)
    first = timezone.localdate() - timedelta(days=5)
    settings.STALE_GENERATION_SECONDS = 0
    assert delivered_since(first) == 1
    assert DaySummary.objects.filter(day=timezone.localdate() - timedelta(days=1)).exists()


def test_yesterday_is_read_live_while_its_jobs_may_still_finish(settings):
    settings.STALE_GENERATION_SECONDS = 2 * 24 * 3600  # midnight is always less than twice that ago
    user = UserFactory()
    made(user, 1)
    first = timezone.localdate() - timedelta(days=5)
    assert delivered_since(first) == 1
    made(user, 1)
    made(user, 0)
    assert delivered_since(first) == 3
    assert not DaySummary.objects.filter(day__gte=summaries.first_open_day()).exists()


def test_a_period_adds_summed_days_and_live_ones_with_latency_percentiles():
    user = UserFactory()
    for days_ago in (0, 4):
        for latency in [3_000] * 9 + [50_000]:
            made(user, days_ago, total_latency_ms=latency)
        made(user, days_ago, status="failed", cost="0", error_code="timeout")
    figures = reports.figures_of(summaries.rows(timezone.localdate() - timedelta(days=6), timezone.localdate()))
    assert (figures["delivered"], figures["failed"], figures["spend"]) == (20, 2, Decimal("2.68"))
    assert (figures["p50_ms"], figures["p95_ms"]) == (5_000, 60_000)
    assert figures["failures"] == [{"error_code": "timeout", "count": 2}]


def test_a_day_summed_up_twice_at_once_is_kept_once():
    made(UserFactory(), 5)
    day = timezone.localdate() - timedelta(days=5)
    summaries.summarize([day])
    summaries.summarize([day])
    assert DaySummary.objects.filter(day=day).count() == 1


def test_the_summarize_days_command_sums_up_closed_days_ahead_of_any_report(capsys):
    made(UserFactory(), 4)
    made(UserFactory(), 9)
    call_command("summarize_days", "--days", "30")
    assert DaySummary.objects.count() == 2
    assert DayActivity.objects.filter(active__gt=0).count() == 2  # the analytics page's active users too
    closed_days = (summaries.first_open_day() - (timezone.localdate() - timedelta(days=30))).days
    assert f"{closed_days} days are summed up" in capsys.readouterr().out


@pytest.fixture
def last_weeks_generation(default_tiers):
    return made(UserFactory(), 7)


async def test_the_running_bot_sums_up_closed_days_on_its_own(last_weeks_generation, bot):
    day = timezone.localdate() - timedelta(days=7)

    def summed():
        return list(DaySummary.objects.filter(day=day).values_list("images", flat=True))

    deadline = asyncio.get_running_loop().time() + 10
    while not await sync_to_async(summed)():
        assert asyncio.get_running_loop().time() < deadline, "the bot never summed up last week"
        await asyncio.sleep(0.05)
    assert await sync_to_async(summed)() == [1]


def test_days_another_process_summed_up_meanwhile_are_kept_and_the_rest_still_summed():
    user = UserFactory()
    for days_ago in (5, 6, 7):
        made(user, days_ago)
    day = timezone.localdate() - timedelta(days=6)
    summaries.summarize([day])  # the other process, a moment earlier
    summaries.summarize([day - timedelta(days=1), day, day + timedelta(days=1)])
    assert sorted(DaySummary.objects.values_list("day", flat=True)) == [
        day - timedelta(days=1),
        day,
        day + timedelta(days=1),
    ]


def test_yesterday_stays_open_while_one_of_its_jobs_is_still_running(settings):
    settings.STALE_GENERATION_SECONDS = 0
    job = made(UserFactory(), 1, status="running", cost="0")
    assert summaries.first_open_day() == timezone.localdate() - timedelta(days=1)
    Generation.objects.filter(pk=job.pk).update(status="delivered", cost_usd="0.134")
    assert summaries.first_open_day() == timezone.localdate()


def test_a_clock_change_at_midnight_does_not_close_yesterday_early(settings):
    settings.TIME_ZONE = "Africa/Cairo"  # on 2024-04-26 clocks went from 00:00 straight to 01:00
    settings.STALE_GENERATION_SECONDS = 900
    thirty_seconds_after_midnight = datetime(2024, 4, 26, 1, 0, 30, tzinfo=ZoneInfo("Africa/Cairo"))
    with mock.patch("django.utils.timezone.now", return_value=thirty_seconds_after_midnight.astimezone(UTC)):
        assert summaries.first_open_day() == date(2024, 4, 25)


def test_a_job_left_open_while_the_bot_was_down_keeps_its_day_open_until_it_is_expired(settings):
    settings.STALE_GENERATION_SECONDS = 0
    user = UserFactory()
    made(user, 3)
    job = made(user, 3, status="running", cost="0")
    day = timezone.localdate() - timedelta(days=3)
    assert summaries.first_open_day() == day
    summaries.rows(day - timedelta(days=1), timezone.localdate())  # a report meanwhile sums up nothing from then on
    Generation.objects.filter(pk=job.pk).update(status="failed", error_code="interrupted")  # the sweeper, once back
    assert summaries.first_open_day() == timezone.localdate()
    [row] = costreports.by_day(summaries.rows(day, day), day, day)
    assert (row["delivered"], row["failed"]) == (1, 1)
