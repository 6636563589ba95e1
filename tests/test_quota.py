"""Quota is reserved before the paid call, committed on delivery, released on failure,
and never oversold, even to simultaneous requests."""

import threading
from datetime import UTC, date, datetime

import pytest
from django.db import connection

from accounts import days, quota
from accounts.models import QuotaUsage
from botcore import generations
from botcore.models import Generation
from tests.factories import TierFactory, UserFactory

DAY = date(2026, 11, 28)


def identity_of(user):
    return generations.Identity(telegram_id=user.telegram_id, username=user.username, language_code="en")


@pytest.mark.django_db
def test_reserve_commit_release_keep_the_count():
    user = UserFactory(tier=TierFactory(daily_limit=2, max_concurrent_jobs=5))
    assert quota.reserve(user, DAY)
    assert quota.reserve(user, DAY)
    assert not quota.reserve(user, DAY)  # both units are in flight
    quota.release(user.pk, DAY)  # one failed
    quota.commit(user.pk, DAY)  # one delivered
    usage = QuotaUsage.objects.get(user=user, day=DAY)
    assert (usage.used, usage.reserved) == (1, 0)
    assert quota.reserve(user, DAY)
    assert not quota.reserve(user, DAY)


@pytest.mark.django_db
def test_release_and_commit_never_go_below_zero():
    user = UserFactory()
    quota.reserve(user, DAY)
    quota.release(user.pk, DAY)
    quota.release(user.pk, DAY)
    quota.commit(user.pk, DAY)
    usage = QuotaUsage.objects.get(user=user, day=DAY)
    assert (usage.used, usage.reserved) == (0, 0)


@pytest.mark.django_db
def test_unlimited_tier_is_never_refused():
    user = UserFactory(tier=TierFactory(daily_limit=None, max_concurrent_jobs=100))
    assert all(quota.reserve(user, DAY) for _ in range(100))
    assert quota.remaining(user, DAY) is None


@pytest.mark.django_db
def test_quota_day_follows_the_configured_time_zone(settings):
    settings.TIME_ZONE = "Asia/Taipei"
    # 17:00 UTC is already 01:00 the next day in Taipei.
    assert days.today(datetime(2026, 11, 28, 15, 59, tzinfo=UTC)) == date(2026, 11, 28)
    assert days.today(datetime(2026, 11, 28, 17, 0, tzinfo=UTC)) == date(2026, 11, 29)


def race(workers, work):
    """Run `work` in `workers` threads released at the same instant; return their results."""
    barrier = threading.Barrier(workers)
    results = [None] * workers

    def run(i):
        try:
            barrier.wait()
            results[i] = work()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_simultaneous_reservations_never_take_more_than_the_limit():
    user = UserFactory(tier=TierFactory(daily_limit=3, max_concurrent_jobs=50))
    granted = race(16, lambda: quota.reserve(user, DAY))
    assert granted.count(True) == 3
    assert QuotaUsage.objects.get(user=user, day=DAY).reserved == 3


def ask_for_one(user):
    """The queued Generation, or the refusal's code."""
    try:
        return generations.request(identity=identity_of(user), chat_id=user.telegram_id, prompt="a cat")[0]
    except generations.Refusal as refusal:
        return refusal.code


@pytest.mark.django_db(transaction=True)
def test_simultaneous_requests_for_the_last_image_get_it_once():
    tier = TierFactory(daily_limit=5, max_concurrent_jobs=50)
    user = UserFactory(tier=tier)
    for _ in range(4):
        Generation.objects.create(
            user=user, chat_id=1, prompt="earlier", status=Generation.Status.DELIVERED, quota_day=days.today()
        )
    QuotaUsage.objects.create(user=user, day=days.today(), used=4)

    results = race(10, lambda: ask_for_one(user))
    assert sum(isinstance(r, Generation) for r in results) == 1
    assert results.count("quota") == 9


@pytest.mark.django_db(transaction=True)
def test_simultaneous_messages_of_one_user_respect_the_tiers_job_limit():
    user = UserFactory(tier=TierFactory(daily_limit=None, max_concurrent_jobs=2))

    results = race(10, lambda: ask_for_one(user))
    assert sum(isinstance(r, Generation) for r in results) == 2
    assert results.count("busy") == 8
    assert QuotaUsage.objects.get(user=user, day=days.today()).reserved == 2
