"""Data migrations carry what an installation already has into the new columns."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts import days

BEFORE = [("accounts", "0007_broadcast_failure"), ("botcore", "0006_day_summaries_from_dashboard")]
AFTER = [("accounts", "0009_user_ever_banned"), ("botcore", "0007_count_open_jobs")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrator(transactional_db):
    yield migrate
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())  # every later test needs the newest schema again


def test_open_jobs_last_requests_and_past_bans_are_carried_over(migrator):
    apps = migrate(BEFORE)
    Tier, User, Ban = (apps.get_model("accounts", name) for name in ("Tier", "TelegramUser", "Ban"))
    QuotaUsage, Generation = apps.get_model("accounts", "QuotaUsage"), apps.get_model("botcore", "Generation")
    tier = Tier.objects.create(name="migrated")
    busy, banned = (User.objects.create(telegram_id=i, tier=tier) for i in (1, 2))
    Ban.objects.create(user=banned, reason="spam", lifted_at=timezone.now())  # lifted: still "ever banned"
    today, now = days.today(), timezone.now()
    QuotaUsage.objects.create(user=busy, day=today, reserved=4, used=1)

    def made(status, batch_key="", minutes_ago=0):
        created = now - timedelta(minutes=minutes_ago)
        Generation.objects.create(
            user=busy, chat_id=1, prompt="p", status=status, batch_key=batch_key, quota_day=today, created_at=created
        )

    made("running", minutes_ago=3)
    made("queued", batch_key="b1", minutes_ago=2)
    made("running", batch_key="b1", minutes_ago=2)
    made("delivered", minutes_ago=5)
    made("refused", minutes_ago=1)  # a refused request reserved nothing and starts no cooldown

    apps = migrate(AFTER)
    row = apps.get_model("accounts", "QuotaUsage").objects.get(user_id=busy.pk, day=today)
    assert (row.open_jobs, row.last_request_at) == (2, now - timedelta(minutes=2))
    ever_banned = apps.get_model("accounts", "TelegramUser").objects.filter(ever_banned=True)
    assert list(ever_banned.values_list("telegram_id", flat=True)) == [2]
