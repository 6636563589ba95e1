"""Staff manage tiers from the dashboard; every change goes through accounts.staff and is audited."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import AuditEntry, Broadcast, TelegramUser, Tier
from tests.factories import TierFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["/tiers/", "/tiers/new/", "/tiers/{pk}/", "/tiers/{pk}/delete/"]


def form(**changes):
    """A tier form as the browser posts it: unchecked boxes are left out."""
    data = {"name": "trial", "daily_limit": "3", "max_resolution": "1K", "cooldown_seconds": "10"}
    data["max_concurrent_jobs"] = "1"
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


@pytest.mark.parametrize("page", PAGES)
def test_only_staff_see_tier_pages(client, admin_client, page):
    url = page.format(pk=TierFactory().pk)
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith("/login/?next=")
    assert client.post(url).status_code == 302
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert client.get(url).status_code == 403 and client.post(url).status_code == 403
    assert admin_client.get(url).status_code == 200


def test_the_list_shows_how_many_users_each_tier_has(admin_client, django_assert_max_num_queries):
    for name, users in [("gold", 3), ("silver", 1), ("lead", 0)]:
        UserFactory.create_batch(users, tier=TierFactory(name=name))
    with django_assert_max_num_queries(4):  # session, staff user, tiers with their counts
        response = admin_client.get("/tiers/")
    counts = {tier.name: tier.user_count for tier in response.context["tiers"]}
    assert {name: counts[name] for name in ["gold", "silver", "lead"]} == {"gold": 3, "silver": 1, "lead": 0}


def test_the_list_names_sizes_and_its_delete_links_ask_first(admin_client):
    tier = TierFactory(name="gold", max_resolution="4K")
    page = admin_client.get("/tiers/").content.decode()
    assert "<td>4K</td>" in page and "R4K" not in page
    assert f'<a href="/tiers/{tier.pk}/delete/">Delete</a>' in page
    assert "Delete tier “gold”?" in admin_client.get(f"/tiers/{tier.pk}/delete/").content.decode()
    assert Tier.objects.filter(pk=tier.pk).exists()


def test_staff_create_an_unlimited_tier_and_it_is_audited(admin_client):
    response = admin_client.post("/tiers/new/", form(daily_limit="", unlimited="on"), follow=True)
    assert "Tier “trial” saved." in response.content.decode()
    tier = Tier.objects.get(name="trial")
    assert (tier.daily_limit, tier.max_resolution, tier.cooldown_seconds, tier.is_default) == (None, "1K", 10, False)
    entry = AuditEntry.objects.get()
    assert (entry.actor.username, entry.action, entry.target) == ("admin", "tier.create", "tier trial")

    # The box wins over a number left in the field.
    admin_client.post(f"/tiers/{tier.pk}/", form(daily_limit="7", unlimited="on"))
    assert Tier.objects.get(pk=tier.pk).daily_limit is None


def test_editing_a_tier_records_before_and_after(admin_client):
    tier = TierFactory(name="silver", daily_limit=5)
    page = admin_client.get(f"/tiers/{tier.pk}/").content.decode()
    assert 'value="silver"' in page
    assert admin_client.post(f"/tiers/{tier.pk}/", form(name="bronze", daily_limit="2")).status_code == 302
    entry = AuditEntry.objects.get(action="tier.update")
    assert (entry.actor_name, entry.target) == ("admin", "tier bronze")
    assert (entry.before["name"], entry.before["daily_limit"]) == ("silver", 5)
    assert (entry.after["name"], entry.after["daily_limit"]) == ("bronze", 2)


def test_a_bad_tier_is_refused_with_form_errors(admin_client):
    TierFactory(name="taken")
    response = admin_client.post("/tiers/new/", form(name="taken", max_concurrent_jobs="0", max_resolution="8K"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"name", "max_concurrent_jobs", "max_resolution"}
    assert not AuditEntry.objects.exists() and Tier.objects.filter(name="taken").count() == 1


def test_making_a_tier_the_default_takes_over_from_the_old_one(admin_client, default_tiers):
    premium = Tier.objects.get(name="premium")
    response = admin_client.post(f"/tiers/{premium.pk}/", form(name="premium", is_default="on"))
    assert response.status_code == 302
    assert list(Tier.objects.filter(is_default=True).values_list("name", flat=True)) == ["premium"]
    admin_client.post("/tiers/new/", form(name="trial", is_default="on"))
    assert list(Tier.objects.filter(is_default=True).values_list("name", flat=True)) == ["trial"]


def test_deleting_an_unused_tier_needs_only_a_confirmation(admin_client):
    tier = TierFactory(name="unused")
    page = admin_client.get(f"/tiers/{tier.pk}/delete/")
    assert "Delete tier “unused”?" in page.content.decode() and "move_to" not in page.context["form"].fields
    assert Tier.objects.filter(pk=tier.pk).exists()
    response = admin_client.post(f"/tiers/{tier.pk}/delete/", follow=True)
    assert "Tier “unused” deleted." in response.content.decode()
    assert not Tier.objects.filter(pk=tier.pk).exists()
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.action, entry.target, entry.after) == ("admin", "tier.delete", "tier unused", {})


def test_deleting_a_tier_in_use_moves_its_users_to_the_chosen_tier(admin_client, default_tiers):
    free, premium = Tier.objects.get(name="free"), Tier.objects.get(name="premium")
    UserFactory.create_batch(2, tier=premium)
    choices = admin_client.get(f"/tiers/{premium.pk}/delete/").context["form"].fields["move_to"].queryset
    assert sorted(tier.name for tier in choices) == ["enterprise", "free"]

    refused = admin_client.post(f"/tiers/{premium.pk}/delete/")
    assert refused.status_code == 200 and "move_to" in refused.context["form"].errors
    refused = admin_client.post(f"/tiers/{premium.pk}/delete/", {"move_to": premium.pk})
    assert "move_to" in refused.context["form"].errors  # it can't move to itself
    assert Tier.objects.filter(pk=premium.pk).exists() and not AuditEntry.objects.exists()

    assert admin_client.post(f"/tiers/{premium.pk}/delete/", {"move_to": free.pk}).status_code == 302
    assert not Tier.objects.filter(pk=premium.pk).exists()
    assert TelegramUser.objects.filter(tier=free).count() == 2
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.after) == ("admin", {"users_moved_to": "free", "users_moved": 2})


def test_deleting_the_default_tier_asks_which_tier_new_users_get(admin_client, default_tiers):
    free, enterprise = Tier.objects.get(name="free"), Tier.objects.get(name="enterprise")
    assert "move_to" in admin_client.post(f"/tiers/{free.pk}/delete/").context["form"].errors
    admin_client.post(f"/tiers/{free.pk}/delete/", {"move_to": enterprise.pk})
    assert list(Tier.objects.filter(is_default=True)) == [enterprise]


def test_tier_names_are_escaped(admin_client):
    TierFactory(name="<b>x</b>")
    page = admin_client.get("/tiers/").content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def test_a_second_staff_member_saving_a_stale_tier_is_told_to_reload(client):
    olivia, sam = (get_user_model().objects.create_user(name, is_staff=True) for name in ("olivia", "sam"))
    tier = TierFactory(name="Pro", daily_limit=5, cooldown_seconds=0)

    def opened_by(staff_member):
        client.force_login(staff_member)
        return client.get(f"/tiers/{tier.pk}/").context["form"]["seen"].value()

    seen_by_olivia, seen_by_sam = opened_by(olivia), opened_by(sam)
    client.force_login(olivia)
    client.post(f"/tiers/{tier.pk}/", form(name="Pro", daily_limit="50", cooldown_seconds="0", seen=seen_by_olivia))
    client.force_login(sam)
    response = client.post(
        f"/tiers/{tier.pk}/", form(name="Pro", daily_limit="5", cooldown_seconds="30", seen=seen_by_sam)
    )

    assert "Someone else changed this since you opened it" in response.context["form"].non_field_errors()[0]
    tier.refresh_from_db()
    assert (tier.daily_limit, tier.cooldown_seconds) == (50, 0)
    client.post(f"/tiers/{tier.pk}/", form(name="Pro", daily_limit="50", cooldown_seconds="30", seen=opened_by(sam)))
    tier.refresh_from_db()
    assert (tier.daily_limit, tier.cooldown_seconds) == (50, 30)


def test_a_tier_is_not_deleted_while_a_broadcast_to_it_is_being_sent(admin_client, default_tiers):
    premium, free = Tier.objects.get(name="premium"), Tier.objects.get(name="free")
    UserFactory(tier=premium)
    broadcast = Broadcast.objects.create(text="for premium users only", tier=premium, audience="premium")
    response = admin_client.post(f"/tiers/{premium.pk}/delete/", {"move_to": free.pk})
    assert "still being sent" in response.content.decode()
    assert Tier.objects.filter(pk=premium.pk).exists() and broadcast.recipients().count() == 1

    Broadcast.objects.filter(pk=broadcast.pk).update(status=Broadcast.Status.DONE)
    admin_client.post(f"/tiers/{premium.pk}/delete/", {"move_to": free.pk})
    assert not Tier.objects.filter(pk=premium.pk).exists()
    assert "<td>premium</td>" in admin_client.get("/broadcasts/").content.decode()  # not "Everyone"


def test_a_name_in_use_is_refused_in_the_staff_members_language(admin_client):
    TierFactory(name="Pro")
    response = admin_client.post("/tiers/new/", form(name="Pro"), headers={"Accept-Language": "zh-hant"})
    assert response.context["form"].errors["name"] == ["已有同名的方案。"]


def test_a_broadcast_whose_sender_was_lost_long_ago_no_longer_keeps_its_tier(admin_client, default_tiers):
    premium, free = Tier.objects.get(name="premium"), Tier.objects.get(name="free")
    stuck = Broadcast.objects.create(text="hello", tier=premium, audience="premium", status=Broadcast.Status.SENDING)
    Broadcast.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=7))
    admin_client.post(f"/tiers/{premium.pk}/delete/", {"move_to": free.pk})
    assert not Tier.objects.filter(pk=premium.pk).exists()
    UserFactory(tier=free)
    stuck.refresh_from_db()
    assert stuck.tier is None and not stuck.recipients().exists()  # never "everyone" instead
