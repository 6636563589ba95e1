"""The audit log reads as sentences in the reader's language, and nobody can rewrite it."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import staff
from accounts.models import AuditEntry, Tier
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return get_user_model().objects.get(username="admin")


def test_a_ban_reads_as_a_sentence_with_its_expiry_in_the_time_zone(admin_client, admin, settings):
    settings.TIME_ZONE = "Asia/Taipei"
    user = UserFactory(username="spammer", telegram_id=4242)
    until = timezone.now() + timedelta(days=2)
    staff.ban_user(actor=admin, user=user, reason="spam", expires_at=until)
    page = admin_client.get("/audit/").content.decode()
    assert "banned @spammer" in page
    assert "reason: spam" in page
    local = timezone.localtime(until, timezone.get_fixed_timezone(8 * 60))
    assert f"until: {local:%Y-%m-%d %H:%M} CST" in page
    assert ">user.ban<" not in page and "+00:00" not in page  # no codes, no raw ISO times


def test_a_tier_change_lists_only_what_changed(admin_client, admin, default_tiers):
    tier = Tier.objects.get(name="free")
    staff.save_tier(actor=admin, tier=tier, name="starter", daily_limit=tier.daily_limit + 5)
    page = admin_client.get("/audit/").content.decode()
    assert "changed the tier “starter”" in page
    assert "name: free → starter" in page and f"images per day: {tier.daily_limit} → {tier.daily_limit + 5}" in page
    assert "cooldown" not in page  # unchanged fields are left out


def test_the_audit_log_reads_in_traditional_chinese(admin_client, admin, default_tiers):
    staff.change_tier(actor=admin, user=UserFactory(username="eve"), tier=Tier.objects.get(name="premium"))
    page = admin_client.get("/audit/", headers={"Accept-Language": "zh-hant"}).content.decode()
    assert ">user.tier<" not in page and "→ premium" in page
    assert "moved" not in page  # the sentence is translated too


def test_the_action_filter_names_actions_in_words(admin_client, admin, default_tiers):
    staff.change_tier(actor=admin, user=UserFactory(), tier=Tier.objects.get(name="premium"))
    page = admin_client.get("/audit/").content.decode()
    assert '<option value="user.tier">Change a user&#x27;s tier</option>' in page


def test_nobody_can_add_change_or_delete_audit_entries_in_django_admin(admin_client, admin, default_tiers):
    staff.change_tier(actor=admin, user=UserFactory(), tier=Tier.objects.get(name="premium"))
    entry = AuditEntry.objects.get()
    base = "/admin/accounts/auditentry/"
    assert admin_client.get(base).status_code == 200  # still readable
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    changes = {"action": "user.ban", "actor_name": "someone else", "target": "x", "before": "{}", "after": "{}"}
    admin_client.post(f"{base}{entry.pk}/change/", changes)
    admin_client.post(base, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    entry.refresh_from_db()
    assert (entry.action, entry.actor_name) == ("user.tier", "admin")
