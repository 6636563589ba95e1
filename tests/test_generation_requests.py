"""What happens when a request is accepted or refused, before any image is made."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import days
from accounts.models import QuotaUsage, Tier
from botcore import generations
from botcore.models import Generation
from tests.factories import BanFactory, KeywordFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def identity_of(user):
    return generations.Identity(telegram_id=user.telegram_id, username=user.username, language_code="en")


def ask(user, prompt="a lighthouse at dawn", **kwargs):
    (generation,) = generations.request(identity=identity_of(user), chat_id=user.telegram_id, prompt=prompt, **kwargs)
    return generation


def refusal_code(user, **kwargs):
    with pytest.raises(generations.Refusal) as refused:
        ask(user, **kwargs)
    return refused.value.code


def test_new_telegram_user_is_registered_on_the_default_tier():
    identity = generations.Identity(telegram_id=77, username="neo", first_name="Neo", language_code="zh-hant")
    (generation,) = generations.request(identity=identity, chat_id=77, prompt="a cat")
    assert generation.status == Generation.Status.QUEUED
    assert (generation.user.username, generation.user.tier.name) == ("neo", "free")
    assert QuotaUsage.objects.get(user=generation.user).reserved == 1


def test_accepted_request_uses_the_users_defaults_and_the_configured_model(settings):
    settings.IMAGE_MODEL = "gemini-3-pro-image-preview"
    user = UserFactory(resolution="1K", aspect_ratio="16:9")
    generation = ask(user)
    assert (generation.resolution, generation.aspect_ratio, generation.model) == (
        "1K",
        "16:9",
        "gemini-3-pro-image-preview",
    )


def test_banned_user_is_refused_with_the_reason():
    ban = BanFactory(reason="spam <script>")
    with pytest.raises(generations.Refusal) as refused:
        ask(ban.user)
    assert refused.value.params["reason"] == "spam <script>"
    assert not Generation.objects.exists()


def test_a_ban_added_in_djangos_admin_refuses_the_next_request(admin_client):
    user = UserFactory()
    ask(user)  # a user the bot knows, never banned
    now = timezone.localtime()
    added = {"user": user.pk, "reason": "abuse", "created_at_0": f"{now:%Y-%m-%d}", "created_at_1": f"{now:%H:%M:%S}"}
    assert admin_client.post("/admin/accounts/ban/add/", added).status_code == 302
    assert refusal_code(user) == "banned"


def test_banned_keyword_is_refused_and_logged_without_charging():
    KeywordFactory(phrase="forbidden")
    user = UserFactory()
    assert refusal_code(user, prompt="something F o r b i d d e n") == "banned_keyword"
    logged = Generation.objects.get()
    assert (logged.status, logged.error_code, logged.quota_day) == ("refused", "banned_keyword", None)
    assert not QuotaUsage.objects.filter(reserved__gt=0).exists()


def test_resolution_above_the_tier_is_refused():
    user = UserFactory(tier=TierFactory(max_resolution="2K"))
    assert refusal_code(user, resolution="4K") == "resolution"


def test_exhausted_quota_is_refused():
    user = UserFactory(tier=TierFactory(daily_limit=1, max_concurrent_jobs=5))
    ask(user)
    assert refusal_code(user) == "quota"


def test_too_many_jobs_at_once_is_refused():
    user = UserFactory(tier=TierFactory(max_concurrent_jobs=1))
    ask(user)
    assert refusal_code(user) == "busy"


def test_cooldown_between_requests():
    user = UserFactory(tier=TierFactory(cooldown_seconds=30, max_concurrent_jobs=5))
    first = ask(user)
    generations.finish(first, Generation.Status.DELIVERED)
    with pytest.raises(generations.Refusal) as refused:
        ask(user)
    assert refused.value.code == "cooldown"
    assert 0 < refused.value.params["seconds"] <= 30


def test_a_batch_is_one_job_until_its_last_image_is_done():
    user = UserFactory(tier=TierFactory(max_concurrent_jobs=1))
    first, second = generations.request(identity=identity_of(user), chat_id=user.telegram_id, prompt="a cat", count=2)
    generations.finish(first, Generation.Status.DELIVERED)
    assert refusal_code(user) == "busy"
    generations.finish(second, Generation.Status.FAILED)
    assert ask(user).status == Generation.Status.QUEUED


def test_a_job_from_just_before_midnight_still_counts_just_after_it(monkeypatch):
    user = UserFactory(tier=TierFactory(max_concurrent_jobs=1, cooldown_seconds=60))
    midnight = days.start_of(days.today())
    monkeypatch.setattr(timezone, "now", lambda: midnight - timedelta(seconds=10))
    late = ask(user)
    monkeypatch.setattr(timezone, "now", lambda: midnight + timedelta(seconds=10))
    assert refusal_code(user) == "busy"
    generations.finish(late, Generation.Status.DELIVERED)
    with pytest.raises(generations.Refusal) as refused:
        ask(user)
    assert (refused.value.code, refused.value.params["seconds"]) == ("cooldown", 41)
    monkeypatch.setattr(timezone, "now", lambda: midnight + timedelta(seconds=51))
    assert ask(user).quota_day == days.today(midnight)


@pytest.mark.parametrize("prompt, code", [("hi", "prompt_too_short"), ("x" * 4001, "prompt_too_long")])
def test_prompt_length_is_checked(prompt, code):
    assert refusal_code(UserFactory(), prompt=prompt) == code


def test_migrations_create_the_three_tiers():
    tiers = {t.name: (t.daily_limit, t.max_resolution, t.is_default) for t in Tier.objects.all()}
    assert tiers == {
        "free": (5, "2K", True),
        "premium": (50, "4K", False),
        "enterprise": (None, "4K", False),
    }


def test_finishing_twice_charges_once():
    user = UserFactory(tier=TierFactory(daily_limit=5))
    generation = ask(user)
    assert generations.finish(generation, Generation.Status.DELIVERED)
    assert not generations.finish(generation, Generation.Status.FAILED)
    usage = QuotaUsage.objects.get(user=user)
    assert (usage.used, usage.reserved) == (1, 0)


def test_stale_generations_give_their_quota_back(settings):
    user = UserFactory()
    generation = ask(user)
    Generation.objects.filter(pk=generation.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert generations.expire_stale() == [generation]
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == ("failed", "interrupted")
    assert QuotaUsage.objects.get(user=user).reserved == 0


def test_a_job_that_waited_long_in_the_queue_but_started_lately_is_not_expired():
    generation = ask(UserFactory())
    long_ago = timezone.now() - timedelta(hours=1)
    Generation.objects.filter(pk=generation.pk).update(created_at=long_ago)
    assert generations.start(generation)
    assert generations.expire_stale() == []


def test_a_paid_call_that_ends_after_its_job_expired_still_logs_its_cost():
    generation = ask(UserFactory())
    Generation.objects.filter(pk=generation.pk).update(created_at=timezone.now() - timedelta(hours=1))
    generations.expire_stale()
    paid = {"provider": "gemini", "model": "m", "upstream_latency_ms": 900_000, "cost_usd": Decimal("0.134")}
    assert not generations.finish(generation, Generation.Status.DELIVERED, file_id="x", **paid)
    generation.refresh_from_db()
    assert (generation.status, generation.cost_usd, generation.file_id) == ("failed", Decimal("0.134"), "")
