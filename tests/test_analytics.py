"""The analytics page: active, new and returning users, weekly cohorts, and how well the bot served
them, per model and resolution; closed days summed up once, today read live."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import days
from botcore import activity, summaries
from botcore.activity import week_of
from botcore.models import DayActivity, Generation, UserActivity, WeekActivity
from dashboard.reports import figures_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def yesterday_is_closed(settings):
    settings.STALE_GENERATION_SECONDS = 0


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_user("olivia", is_staff=True))
    return client


def asked(user, day=None, status="delivered", cost="0.134", **fields):
    """A request of `user` at noon on `day` (days ago, or a date), or now."""
    if day is None:
        when = timezone.now()
    else:
        day = days.today() - timedelta(days=day) if isinstance(day, int) else day
        when = days.start_of(day) + timedelta(hours=12)
    return Generation.objects.create(
        user=user,
        tier=user.tier.name,
        chat_id=user.telegram_id,
        prompt="a cat",
        status=status,
        cost_usd=cost if status == "delivered" else "0",
        created_at=when,
        **fields,
    )


def analytics(client, **params):
    response = client.get("/analytics/", params)
    assert response.status_code == 200
    return response.context


def test_the_page_is_for_staff_only(client):
    assert client.get("/analytics/").status_code == 302
    client.force_login(get_user_model().objects.create_user("someone"))
    assert client.get("/analytics/").status_code == 403


def test_active_users_today_over_a_week_and_over_a_month(staff_client):
    today, this_week, this_month, long_ago = (UserFactory() for _ in range(4))
    asked(today)
    asked(today, 2)
    asked(this_week, 6)
    asked(this_week, 6)  # twice on one day: one active user
    asked(this_month, 29)
    asked(long_ago, 30)

    users = analytics(staff_client)["users"]

    assert (users["today"], users["week"], users["month"]) == (1, 2, 3)
    assert [(row["active"], row["new"]) for row in users["days"] if row["active"]] == [(1, 1), (1, 1), (1, 1), (1, 0)]


def test_a_new_user_and_a_returning_one(staff_client):
    regular, newcomer = UserFactory(), UserFactory()
    asked(regular, 40)
    asked(regular)
    asked(newcomer, status="failed")

    users = analytics(staff_client)["users"]

    assert (users["active"], users["new"], users["returning"]) == (2, 1, 1)
    assert (users["days"][-1]["new"], users["days"][-1]["returning"]) == (1, 1)
    assert (analytics(staff_client, range="90")["users"]["new"]) == 2  # both asked first within 90 days


def test_a_cohort_row_is_the_share_of_its_users_active_each_later_week(staff_client):
    cohort = week_of(days.today()) - timedelta(weeks=2)
    users = [UserFactory() for _ in range(4)]
    for n, user in enumerate(users):
        asked(user, cohort + timedelta(days=n))
    asked(users[0], cohort + timedelta(days=6))  # again in their first week: not a later one
    asked(users[0], cohort + timedelta(weeks=1))
    asked(users[0], cohort + timedelta(weeks=1, days=1))
    asked(users[1], cohort + timedelta(weeks=1, days=6))
    asked(users[2])  # today, in this week
    asked(UserFactory(), cohort - timedelta(days=1))  # the week before: another cohort

    rows = {row["week"]: row for row in analytics(staff_client)["cohorts"]}

    row = rows[cohort]
    assert row["users"] == 4
    assert [cell["share"] if cell else "not yet" for cell in row["cells"]] == [0.5, 0.25] + ["not yet"] * 5
    assert rows[cohort - timedelta(weeks=1)]["users"] == 1
    assert list(rows)[-1] == week_of(days.today())


def test_success_rate_latency_and_refusals_are_the_day_summaries(staff_client):
    user = UserFactory()
    for days_ago in (0, 5, 20):
        for latency in [4_000] * 8 + [40_000, 100_000]:
            asked(user, days_ago, total_latency_ms=latency)
        asked(user, days_ago, status="failed", error_code="timeout")
    asked(user, 3, status="refused", error_code="banned_keyword")

    context = analytics(staff_client)

    today = days.today()
    assert context["figures"] == figures_of(summaries.rows(today - timedelta(days=29), today))
    figures = context["figures"]
    assert (figures["delivered"], figures["failed"], figures["refused"]) == (30, 3, 1)
    assert (figures["success_rate"], figures["p50_ms"], figures["p95_ms"]) == (30 / 33, 5_000, 120_000)
    assert context["refusals"] == [{"error_code": "banned_keyword", "count": 1}]


def test_refusals_and_failures_read_as_words(staff_client):
    user = UserFactory()
    asked(user, 2, status="refused", error_code="banned_keyword")
    asked(user, 2, status="failed", error_code="safety")

    page = staff_client.get("/analytics/").content.decode()

    assert "The prompt has a banned keyword." in page
    assert "The provider refused the prompt or image as unsafe." in page
    assert "banned_keyword" not in page


def test_cost_success_and_latency_per_model_and_resolution(staff_client):
    user = UserFactory()
    asked(user, 1, model="pro", resolution="4K", cost="0.24", total_latency_ms=25_000)
    asked(user, 1, model="pro", resolution="4K", status="failed", error_code="timeout")
    asked(user, 2, model="pro", resolution="2K", total_latency_ms=9_000)
    asked(user, model="pro", resolution="2K", total_latency_ms=9_000)
    asked(user, model="pro", resolution="2K", status="refused", error_code="banned_keyword")

    models = analytics(staff_client)["models"]

    found = [
        (row["resolution"], row["delivered"], row["failed"], row["refused"], row["success_rate"], row["p95_ms"])
        for row in models
    ]
    assert found == [("2K", 2, 0, 1, 1.0, 10_000), ("4K", 1, 1, 0, 0.5, 30_000)]
    assert [(row["spend"], row["per_image"]) for row in models] == [
        (Decimal("0.268"), Decimal("0.134")),
        (Decimal("0.24"), Decimal("0.24")),
    ]
    page = staff_client.get("/analytics/").content.decode()
    assert "$0.27" in page and "$0.13" in page


def test_closed_days_are_summed_up_once_and_today_is_read_live(staff_client, django_assert_max_num_queries):
    ann, ben = UserFactory(), UserFactory()
    asked(ann, 3)
    asked(ben, 3)
    asked(ann, 1)

    first = analytics(staff_client)["users"]
    summed = DayActivity.objects.get(day=days.today() - timedelta(days=3))
    Generation.objects.filter(created_at__lt=days.start_of(days.today())).delete()
    with django_assert_max_num_queries(11):
        again = analytics(staff_client)["users"]
    assert again == first
    assert DayActivity.objects.get(day=summed.day).pk == summed.pk

    asked(ben)
    asked(UserFactory())
    now = analytics(staff_client)["users"]
    assert (now["today"], now["week"], now["new"], now["returning"]) == (2, 3, 3, 0)
    assert not UserActivity.objects.filter(last_day=days.today()).exists()


def test_days_summed_up_as_they_close_add_up_to_the_same_as_all_at_once(staff_client, monkeypatch):
    ann, ben, cat, dan = (UserFactory() for _ in range(4))
    for user, days_ago in [(ann, 40), (ann, 12), (ann, 9), (ann, 2), (ben, 11), (ben, 10), (cat, 9), (cat, 1)]:
        asked(user, days_ago)
    asked(dan, 5, status="refused", error_code="banned_keyword")
    asked(dan, 2)

    def summaries_kept():
        return (
            list(DayActivity.objects.order_by("day").values_list("day", "active", "new", "latest")),
            list(WeekActivity.objects.order_by("cohort", "week").values_list("cohort", "week", "users")),
            list(UserActivity.objects.order_by("pk").values_list("pk", "first_day", "last_day")),
        )

    def users_and_cohorts():
        context = analytics(staff_client)
        return context["users"], context["cohorts"]

    today = days.today()
    for days_ago in range(13, -1, -1):  # a day closes, someone looks
        monkeypatch.setattr(summaries, "first_open_day", lambda days_ago=days_ago: today - timedelta(days=days_ago))
        day_by_day = users_and_cohorts()
    kept = summaries_kept()
    for model in (DayActivity, WeekActivity, UserActivity):
        model.objects.all().delete()

    assert users_and_cohorts() == day_by_day
    assert summaries_kept() == kept
    users = day_by_day[0]
    assert (users["week"], users["month"], users["new"], users["returning"]) == (3, 4, 3, 1)


def test_days_summed_up_by_two_processes_at_once_are_kept_once(monkeypatch):
    asked(UserFactory(), 3)
    asked(UserFactory(), 2)
    keep = activity._keep

    def another_process_keeps_them_first(*args, **kwargs):
        monkeypatch.setattr(activity, "_keep", keep)
        activity.sum_up_closed_days()  # while this one was walking the same days
        keep(*args, **kwargs)

    monkeypatch.setattr(activity, "_keep", another_process_keeps_them_first)
    assert activity.sum_up_closed_days() == days.today()

    assert list(DayActivity.objects.filter(active__gt=0).values_list("active", "new", "latest")) == [(1, 1, 1)] * 2
    assert UserActivity.objects.count() == 2
