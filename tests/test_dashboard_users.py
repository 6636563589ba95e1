"""The dashboard's users pages: find a user, see their usage, and change their tier, quota or ban."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from accounts import credits, days, quota
from accounts import payments as sales
from accounts.models import AuditEntry, Ban, CreditPack, LedgerEntry, QuotaUsage
from botcore.models import Generation
from tests.factories import BanFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

ACTIONS = ["tier", "grant", "credits", "ban", "unban"]


@pytest.fixture
def staff_user():
    return get_user_model().objects.create_user("olivia", is_staff=True)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def pages(user):
    return ["/users/", f"/users/{user.pk}/"]


def actions(user):
    return [f"/users/{user.pk}/{action}/" for action in ACTIONS]


def listed(response):
    return [u.telegram_id for u in response.context["page"]]


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_anonymous_visitors_are_sent_to_sign_in_everywhere(client):
    user = UserFactory()
    for url in pages(user) + actions(user):
        response = client.post(url) if url in actions(user) else client.get(url)
        assert response.status_code == 302 and response.url == f"/login/?next={url}"
    assert not AuditEntry.objects.exists()


def test_signed_in_non_staff_are_forbidden_everywhere(client):
    client.force_login(get_user_model().objects.create_user("visitor"))
    user = UserFactory()
    for url in pages(user):
        assert client.get(url).status_code == 403
    for url in actions(user):
        assert client.post(url, {"count": 5, "reason": "x"}).status_code == 403
    assert not AuditEntry.objects.exists() and not Ban.objects.exists()


def test_actions_only_take_posts(staff_client):
    user = UserFactory()
    for url in actions(user):
        assert staff_client.get(url).status_code == 405


def test_unknown_user_is_not_found(staff_client):
    assert staff_client.get("/users/999999/").status_code == 404
    assert staff_client.post("/users/999999/grant/", {"count": 1}).status_code == 404


def test_search_by_telegram_id_is_exact(staff_client):
    UserFactory(telegram_id=123456)
    UserFactory(telegram_id=1234567)
    assert listed(staff_client.get("/users/", {"q": "123456"})) == [123456]
    assert listed(staff_client.get("/users/", {"q": "9" * 40})) == []  # longer than any id: no error


def test_search_by_username_or_first_name(staff_client):
    UserFactory(telegram_id=1, username="catlover", first_name="Bob")
    UserFactory(telegram_id=2, username="dogs", first_name="Catherine")
    UserFactory(telegram_id=3, username="birds", first_name="Eve")
    assert sorted(listed(staff_client.get("/users/", {"q": "CAT"}))) == [1, 2]
    assert listed(staff_client.get("/users/", {"q": "@birds"})) == [3]


def test_filter_by_tier_banned_and_active(staff_client):
    pro = TierFactory(name="pro")
    UserFactory(telegram_id=1, tier=pro)
    UserFactory(telegram_id=2)
    BanFactory(user=UserFactory(telegram_id=3))
    BanFactory(user=UserFactory(telegram_id=4), lifted_at=timezone.now())
    BanFactory(user=UserFactory(telegram_id=5), expires_at=timezone.now() - timedelta(days=1))
    UserFactory(telegram_id=6, is_active=False)
    assert listed(staff_client.get("/users/", {"tier": pro.pk})) == [1]
    assert listed(staff_client.get("/users/", {"banned": "yes"})) == [3]
    assert 3 not in listed(staff_client.get("/users/", {"banned": "no"}))
    assert listed(staff_client.get("/users/", {"active": "no"})) == [6]


def test_nonsense_filters_are_ignored(staff_client):
    UserFactory(telegram_id=1)
    UserFactory(telegram_id=2)
    response = staff_client.get("/users/", {"sort": "password", "tier": "x", "banned": "maybe", "page": "last"})
    assert response.status_code == 200 and listed(response) == [2, 1]


def test_list_shows_badges_and_links(staff_client):
    user = BanFactory(user=UserFactory(username="mallory", first_name="Mal")).user
    page = staff_client.get("/users/").content.decode()
    assert "@mallory" in page and "Mal" in page and f'href="/users/{user.pk}/"' in page
    assert "banned" in page and user.tier.name in page


def test_pagination_keeps_the_filters(staff_client):
    tier = TierFactory(name="basic")
    for n in range(55):
        UserFactory(telegram_id=10_000 + n, tier=tier)
    UserFactory()  # another tier: filtered out
    first = staff_client.get("/users/", {"tier": tier.pk, "sort": "telegram_id"})
    assert len(first.context["page"]) == 50 and first.context["page"].paginator.count == 55
    assert f"?tier={tier.pk}&amp;sort=telegram_id&amp;page=2" in first.content.decode()
    second = staff_client.get("/users/", {"tier": tier.pk, "sort": "telegram_id", "page": 2})
    assert listed(second) == list(range(10_050, 10_055))


def test_sorting_by_username_both_ways_keeps_the_search(staff_client):
    for telegram_id, username in [(1, "cat_b"), (2, "cat_c"), (3, "cat_a"), (4, "dog")]:
        UserFactory(telegram_id=telegram_id, username=username)
    searched = staff_client.get("/users/", {"q": "cat"})
    assert '<a href="?q=cat&amp;sort=username">Username</a>' in searched.content.decode()

    ascending = staff_client.get("/users/", {"q": "cat", "sort": "username"})
    assert listed(ascending) == [3, 1, 2]
    page = ascending.content.decode()
    assert '<th scope="col" aria-sort="ascending">' in page
    assert '<a href="?q=cat&amp;sort=-username">Username</a>' in page  # a second click reverses it
    assert 'name="sort" value="username"' in page  # filtering again keeps the order

    descending = staff_client.get("/users/", {"q": "cat", "sort": "-username"})
    assert listed(descending) == [2, 1, 3] and '<th scope="col" aria-sort="descending">' in descending.content.decode()
    assert "3 users" in descending.content.decode()


def test_recently_seen_and_newest_users_come_first_on_a_first_click(staff_client):
    now = timezone.now()
    for telegram_id, seen_days_ago in [(1, 5), (2, 1), (3, 9)]:
        UserFactory(telegram_id=telegram_id, last_seen_at=now - timedelta(days=seen_days_ago))
    page = staff_client.get("/users/").content.decode()
    assert '<a href="?sort=-last_seen">Last seen</a>' in page and '<a href="?sort=joined">Joined</a>' in page
    assert listed(staff_client.get("/users/", {"sort": "-last_seen"})) == [2, 1, 3]
    assert listed(staff_client.get("/users/", {"sort": "last_seen"})) == [3, 1, 2]
    assert listed(staff_client.get("/users/", {"sort": "joined"})) == [1, 2, 3]


def test_a_page_costs_the_same_few_queries_however_many_users(staff_client, django_assert_max_num_queries):
    def add_users(count):
        for n in range(count):
            user = UserFactory(tier=TierFactory())
            if n % 2:
                BanFactory(user=user)

    add_users(5)
    with django_assert_max_num_queries(5) as few:
        staff_client.get("/users/", {"q": "user"})
    add_users(55)
    with django_assert_max_num_queries(5) as many:
        staff_client.get("/users/", {"q": "user"})
    assert len(few) == len(many)


def test_detail_shows_usage_history_and_escapes_names(staff_client):
    user = UserFactory(username="<script>alert(1)</script>", tier=TierFactory(daily_limit=10))
    day = days.today()
    QuotaUsage.objects.create(user=user, day=day, used=3, reserved=1, granted=2)
    QuotaUsage.objects.create(user=user, day=day - timedelta(days=3), used=7)
    QuotaUsage.objects.create(user=user, day=day - timedelta(days=40), used=99)  # outside the 30 days
    response = staff_client.get(f"/users/{user.pk}/")
    page = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert response.context["remaining"] == 8  # 10 + 2 granted - 3 used - 1 in progress
    assert "<b>8</b>remaining" in page.replace("\n", "")
    history = response.context["history"]
    assert len(history) == 30 and history[0] == (day, 3, 2) and history[3] == (day - timedelta(days=3), 7, 0)
    assert response.context["history_total"] == 10


def test_detail_says_unlimited_for_an_unlimited_tier(staff_client):
    user = UserFactory(tier=TierFactory(daily_limit=None))
    response = staff_client.get(f"/users/{user.pk}/")
    assert response.context["remaining"] is None and "unlimited" in response.content.decode()


def test_detail_lists_recent_generations_with_thumbnails_and_bans(staff_client):
    user = UserFactory()
    kept = Generation(
        user=user, chat_id=1, prompt="a <b>bold</b> cat", status="delivered", cost_usd="0.134", aspect_ratio="16:9"
    )
    kept.original.save("cat.png", ContentFile(b"png"), save=True)
    failed = Generation.objects.create(user=user, chat_id=1, prompt="no file", status="failed", error_code="timeout")
    BanFactory(user=user, reason="old spam", lifted_at=timezone.now())
    BanFactory(user=user, reason="new <i>spam</i>")
    page = staff_client.get(f"/users/{user.pk}/").content.decode()
    assert (
        f'src="/generations/{kept.pk}/thumbnail.jpg" width="96" height="54"' in page
        and page.count('class="thumb"') == 1
    )
    assert f'href="/generations/{kept.pk}/"' in page and f'href="/generations/{failed.pk}/"' in page
    assert "a &lt;b&gt;bold&lt;/b&gt; cat" in page and "$0.13" in page and "$0.1340" not in page
    assert "Failed: The provider took too long to answer." in page and "(timeout)" not in page
    assert "old spam" in page and "new &lt;i&gt;spam&lt;/i&gt;" in page and "Lift ban" in page


def test_a_users_page_links_to_all_their_generations(staff_client):
    user = UserFactory(telegram_id=4242, username="carol")
    page = staff_client.get(f"/users/{user.pk}/").content.decode()
    assert '<a href="/generations/?user=4242">All generations of @carol</a>' in page


def test_times_on_a_users_page_carry_their_zone(staff_client, settings):
    settings.TIME_ZONE = "Asia/Taipei"
    user = UserFactory()
    User = type(user)
    User.objects.filter(pk=user.pk).update(last_seen_at=datetime(2026, 3, 1, 4, 5, tzinfo=UTC))
    page = staff_client.get(f"/users/{user.pk}/").content.decode()
    assert "2026-03-01 12:05 CST" in page  # last seen, in Taipei's time


def test_banning_and_lifting_ask_first_in_the_browser(staff_client):
    user = UserFactory(username="mallory")
    page = staff_client.get(f"/users/{user.pk}/").content.decode()
    assert 'data-confirm="Ban @mallory? The bot will refuse their requests until the ban ends."' in page
    assert '<script src="/static/js/confirm.js" defer></script>' in page
    BanFactory(user=user)
    page = staff_client.get(f"/users/{user.pk}/").content.decode()
    assert 'data-confirm="Lift the ban on @mallory? They can generate again at once."' in page


def test_staff_changes_a_users_tier(staff_client, staff_user):
    user = UserFactory()
    pro = TierFactory(name="pro")
    response = staff_client.post(f"/users/{user.pk}/tier/", {"tier": pro.pk}, follow=True)
    user.refresh_from_db()
    assert user.tier == pro
    assert response.redirect_chain == [(f"/users/{user.pk}/", 302)]
    assert messages_of(response) == [f"{user} is now on pro."]
    [entry] = AuditEntry.objects.all()
    assert (entry.actor, entry.action, entry.after) == (staff_user, "user.tier", {"tier": "pro"})


def test_staff_grants_extra_images_for_today(staff_client, staff_user):
    user = UserFactory(tier=TierFactory(daily_limit=5))
    response = staff_client.post(f"/users/{user.pk}/grant/", {"count": 3}, follow=True)
    assert quota.remaining(user) == 8
    assert messages_of(response) == ["Granted 3 extra images for today."]
    [entry] = AuditEntry.objects.all()
    assert (entry.actor, entry.action) == (staff_user, "user.grant")


def test_a_grant_outside_1_to_1000_is_refused(staff_client):
    user = UserFactory()
    for count in (0, 1001, "many"):
        response = staff_client.post(f"/users/{user.pk}/grant/", {"count": count}, follow=True)
        [message] = response.context["messages"]
        assert message.level_tag == "error"
    assert not QuotaUsage.objects.exists() and not AuditEntry.objects.exists()


def test_staff_grant_credits_with_a_note_and_see_them_in_the_ledger(staff_client, staff_user, settings):
    settings.CREDIT_EXPIRY_DAYS = 30
    user = UserFactory()
    response = staff_client.post(f"/users/{user.pk}/credits/", {"count": 5, "note": "support case 12"}, follow=True)
    assert messages_of(response) == ["Granted 5 credits."]
    user.refresh_from_db()
    assert user.credits == 5 == credits.in_ledger(user)
    [entry] = AuditEntry.objects.all()
    assert (entry.actor, entry.action, entry.after) == (staff_user, "user.credits", {"credits": 5, "granted": 5})

    [lot] = response.context["lots"]
    assert lot.left == 5 and lot.expires_at.date() == (timezone.now() + timedelta(days=30)).date()
    page = response.content.decode()
    assert '<h2 id="credits">5 credits</h2>' in page
    assert '<td class="n">+5</td>' in page and "support case 12" in page and "<td>olivia</td>" in page

    refused = staff_client.post(f"/users/{user.pk}/credits/", {"count": 0}, follow=True)
    assert [m.level_tag for m in refused.context["messages"]] == ["error"]
    assert AuditEntry.objects.count() == 1


def test_a_users_page_shows_a_purchase_its_spends_and_the_tier_upgrade_it_bought(staff_client):
    free, pro = TierFactory(name="Free"), TierFactory(name="Pro")
    user = UserFactory(tier=free)
    pack = CreditPack.objects.create(name="Pro month", stars=100, images=3, tier=pro, tier_days=30)
    payment, _new = sales.credit(user=user, charge_id="stxTest1", payload=sales.Offer.of(pack).payload, stars=100)
    [held] = credits.hold(user, 1)
    generation = Generation.objects.create(user=user, chat_id=1, prompt="a cat", credit=held)

    response = staff_client.get(f"/users/{user.pk}/")
    page = response.content.decode()
    assert "A pack's upgrade: until" in page and "then back to Free" in page
    assert [(e.kind, e.images, e.state) for e in response.context["ledger"]] == [
        ("spend", -1, "held"),
        ("purchase", 3, "done"),
    ]
    assert f'<a href="/generations/{generation.pk}/">generation {generation.pk}</a>' in page
    assert f'<a href="/payments/{payment.pk}/">Pro month</a>' in page
    assert 'Spend <span class="muted">(Held)</span>' in page
    assert [lot.left for lot in response.context["lots"]] == [2]
    assert LedgerEntry.objects.count() == 2


def test_staff_bans_a_user_until_a_time(staff_client, staff_user):
    user = UserFactory()
    until = timezone.localtime() + timedelta(days=2)
    data = {"reason": "spam", "expires_at": until.strftime("%Y-%m-%dT%H:%M")}
    response = staff_client.post(f"/users/{user.pk}/ban/", data, follow=True)
    ban = Ban.objects.get(user=user)
    assert ban.reason == "spam" and ban.created_by == staff_user
    assert ban.expires_at == until.replace(second=0, microsecond=0)
    assert messages_of(response) == [f"{user} is banned."]
    [entry] = AuditEntry.objects.all()
    assert (entry.actor, entry.action) == (staff_user, "user.ban")


def test_a_ban_needs_a_reason(staff_client):
    user = UserFactory()
    response = staff_client.post(f"/users/{user.pk}/ban/", {"reason": ""}, follow=True)
    assert messages_of(response) == ["Reason: This field is required."]
    assert not Ban.objects.exists()


def test_a_ban_expiring_in_the_past_is_refused(staff_client):
    user = UserFactory()
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = staff_client.post(f"/users/{user.pk}/ban/", {"reason": "spam", "expires_at": past}, follow=True)
    assert messages_of(response) == ["A ban's expiry must be in the future."]
    assert not Ban.objects.exists() and not AuditEntry.objects.exists()


def test_staff_lifts_a_ban(staff_client, staff_user):
    user = UserFactory()
    ban = BanFactory(user=user)
    response = staff_client.post(f"/users/{user.pk}/unban/", follow=True)
    ban.refresh_from_db()
    assert ban.lifted_at is not None and ban.lifted_by == staff_user
    assert messages_of(response) == [f"The ban on {user} is lifted."]
    [entry] = AuditEntry.objects.all()
    assert (entry.actor, entry.action) == (staff_user, "user.unban")


def test_lifting_when_there_is_no_ban_says_so(staff_client):
    user = UserFactory()
    response = staff_client.post(f"/users/{user.pk}/unban/", follow=True)
    assert messages_of(response) == [f"{user} has no ban in force."]
    assert not AuditEntry.objects.exists()


def test_actions_need_the_csrf_token(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    user = UserFactory()
    assert client.post(f"/users/{user.pk}/grant/", {"count": 5}).status_code == 403
    assert not AuditEntry.objects.exists()


def test_a_search_with_digits_from_another_script_looks_for_a_name(staff_client):
    room = UserFactory(first_name="Room ²")
    UserFactory(first_name="Room 2")
    assert listed(staff_client.get("/users/", {"q": "²"})) == [room.telegram_id]
    assert [user["telegram_id"] for user in staff_client.get("/api/users", {"q": "²"}).json()["items"]] == [
        room.telegram_id
    ]
