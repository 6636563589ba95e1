"""What staff change goes through one service each, and every change leaves an audit entry."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import moderation, quota, staff
from accounts.models import AuditEntry, Ban, TelegramUser, Tier
from botcore import generations
from tests.factories import KeywordFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("olivia", is_staff=True)


def ask(user):
    identity = generations.Identity(telegram_id=user.telegram_id)
    return generations.request(identity=identity, chat_id=user.telegram_id, prompt="a paper crane")


def test_granted_images_let_a_user_past_todays_limit(operator):
    user = UserFactory(tier=TierFactory(daily_limit=1, max_concurrent_jobs=5))
    ask(user)
    with pytest.raises(generations.Refusal):
        ask(user)
    staff.grant_images(actor=operator, user=user, count=2)
    ask(user)
    assert quota.remaining(user) == 1
    [entry] = AuditEntry.objects.all()
    assert (entry.actor_name, entry.action, entry.before, entry.after) == (
        "olivia",
        "user.grant",
        {"remaining": 0},
        {"remaining": 2, "granted": 2},
    )


def test_a_ban_stops_requests_until_it_is_lifted(operator):
    user = UserFactory()
    ban = staff.ban_user(actor=operator, user=user, reason="spam", expires_at=timezone.now() + timedelta(days=1))
    with pytest.raises(generations.Refusal) as refused:
        ask(user)
    assert refused.value.code == "banned"
    staff.lift_ban(actor=operator, ban=ban)
    assert ask(user)
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["user.unban", "user.ban"]


def test_a_ban_cannot_expire_in_the_past(operator):
    with pytest.raises(staff.StaffError):
        staff.ban_user(actor=operator, user=UserFactory(), reason="x", expires_at=timezone.now() - timedelta(hours=1))
    assert not Ban.objects.exists() and not AuditEntry.objects.exists()


def test_deleting_a_tier_in_use_needs_a_tier_for_its_users(operator, default_tiers):
    free, premium = Tier.objects.get(name="free"), Tier.objects.get(name="premium")
    UserFactory.create_batch(3, tier=premium)
    with pytest.raises(staff.StaffError, match="3 users"):
        staff.delete_tier(actor=operator, tier=premium)
    staff.delete_tier(actor=operator, tier=premium, move_to=free)
    assert TelegramUser.objects.filter(tier=free).count() == 3
    assert not Tier.objects.filter(name="premium").exists()
    assert AuditEntry.objects.get(action="tier.delete").after == {"users_moved_to": "free", "users_moved": 3}


def test_a_new_default_tier_takes_over_from_the_old_one(operator, default_tiers):
    staff.save_tier(actor=operator, name="trial", daily_limit=2, max_resolution="1K", is_default=True)
    assert list(Tier.objects.filter(is_default=True).values_list("name", flat=True)) == ["trial"]


@pytest.mark.django_db(transaction=True)
def test_a_keyword_staff_add_is_matched_at_once_in_their_process(operator):
    assert moderation.matching_keyword("a fake passport") is None  # fills the keyword cache
    staff.save_keyword(actor=operator, phrase="fake passport")
    assert moderation.matching_keyword("a FAKE pass-port") == "fake passport"


def test_changing_a_tier_is_recorded_with_before_and_after(operator, default_tiers):
    user = UserFactory(tier=Tier.objects.get(name="free"), username="alice")
    staff.change_tier(actor=operator, user=user, tier=Tier.objects.get(name="premium"))
    entry = AuditEntry.objects.get()
    assert (entry.target, entry.before, entry.after) == ("@alice", {"tier": "free"}, {"tier": "premium"})


@pytest.mark.django_db(transaction=True)
def test_disabling_a_keyword_lets_the_prompt_through(operator):
    keyword = KeywordFactory(phrase="dragon")
    assert moderation.matching_keyword("a dragon") == "dragon"
    staff.save_keyword(actor=operator, keyword=keyword, is_active=False)
    assert moderation.matching_keyword("a dragon") is None


def test_a_ban_two_staff_lift_at_once_is_lifted_and_recorded_once(operator):
    sam = get_user_model().objects.create_user("sam", is_staff=True)
    ban = staff.ban_user(actor=operator, user=UserFactory(), reason="spam")
    seen_by_olivia, seen_by_sam = Ban.objects.get(pk=ban.pk), Ban.objects.get(pk=ban.pk)
    assert staff.lift_ban(actor=operator, ban=seen_by_olivia)
    assert not staff.lift_ban(actor=sam, ban=seen_by_sam)
    ban.refresh_from_db()
    assert ban.lifted_by == operator and AuditEntry.objects.filter(action="user.unban").count() == 1


@pytest.mark.parametrize(
    "action, says",
    [
        (lambda user, actor: staff.change_tier(actor=actor, user=user, tier=user.tier), "is already on"),
        (lambda user, actor: staff.unban_user(actor=actor, user=user), "has no ban in force"),
        (lambda user, actor: staff.ban_user(actor=actor, user=user, reason="x" * 501), "at most 500 characters"),
        (lambda user, actor: staff.ban_user(actor=actor, user=user, reason=" "), "Give the reason"),
        (
            lambda user, actor: staff.ban_user(
                actor=actor, user=user, reason="spam", expires_at=timezone.now() + timedelta(days=365 * 101)
            ),
            "at most 100 years",
        ),
    ],
)
def test_an_action_that_would_change_nothing_or_cannot_be_kept_is_refused(operator, action, says):
    user = UserFactory()
    with pytest.raises(staff.StaffError, match=says):
        action(user, operator)
    assert not AuditEntry.objects.exists() and not Ban.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_keyword_lets_the_prompt_through_at_once_and_is_recorded(operator):
    keyword = KeywordFactory(phrase="dragon")
    assert moderation.matching_keyword("a dragon") == "dragon"  # fills the keyword cache
    staff.delete_keyword(actor=operator, keyword=keyword)
    assert moderation.matching_keyword("a dragon") is None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target, entry.before["phrase"]) == ("keyword.delete", "keyword dragon", "dragon")
    with pytest.raises(staff.StaffError, match="already deleted"):  # by another staff member, say
        staff.delete_keyword(actor=operator, keyword=keyword)
    assert AuditEntry.objects.count() == 1
