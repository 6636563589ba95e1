"""Staff broadcasts reach every active user (or one tier's) and note who blocked the bot."""

import threading

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model

from accounts import staff
from accounts.models import AuditEntry, Broadcast, TelegramUser, Tier
from botcore import broadcasts
from tests.factories import TierFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("olivia", is_staff=True)


def received(tg):
    return {call.params["chat_id"]: call.params["text"] for call in tg.calls_of("sendMessage") if call.status == 200}


def finished(broadcast_id, timeout=15):
    """The broadcast once its background thread is done with it (and with its database connection)."""
    for thread in threading.enumerate():
        if thread.name == f"broadcast-{broadcast_id}":
            thread.join(timeout)
    return Broadcast.objects.get(pk=broadcast_id)


def test_users_who_blocked_the_bot_are_counted_and_marked_inactive(bot_settings, tg, operator):
    alice, _, _ = [UserFactory(telegram_id=i) for i in (101, 102, 103)]
    tg.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")  # the first recipient: alice
    broadcast = Broadcast.objects.create(text="We are back <b>online</b> & fast", created_by=operator)

    done = async_to_sync(broadcasts.send)(broadcast.pk)

    assert (done.status, done.total, done.sent, done.blocked, done.failed) == ("done", 3, 2, 1, 0)
    assert received(tg) == {102: "We are back <b>online</b> & fast", 103: "We are back <b>online</b> & fast"}
    assert not TelegramUser.objects.get(pk=alice.pk).is_active
    async_to_sync(broadcasts.send)(broadcast.pk)  # sending it again does nothing
    assert len(received(tg)) == 2


def test_a_broadcast_to_one_tier_skips_everyone_else_and_inactive_users(bot_settings, tg, operator):
    gold, other = TierFactory(), TierFactory()
    UserFactory(telegram_id=201, tier=gold)
    UserFactory(telegram_id=202, tier=gold, is_active=False)
    UserFactory(telegram_id=203, tier=other)
    broadcast = Broadcast.objects.create(text="Gold news", tier=gold, created_by=operator)
    async_to_sync(broadcasts.send)(broadcast.pk)
    assert received(tg) == {201: "Gold news"}


def test_staff_start_a_broadcast_from_the_dashboard_and_see_it_finish(bot_settings, tg, client, operator):
    UserFactory.create_batch(4)
    client.force_login(operator)
    response = client.post("/broadcasts/", {"text": "Maintenance at 10:00 <i>UTC</i>", "tier": ""})
    assert response.status_code == 302
    broadcast = finished(Broadcast.objects.get().pk)
    page = client.get(response.url).content.decode()
    assert "4 / 4" in page and "&lt;i&gt;UTC&lt;/i&gt;" in page
    entry = AuditEntry.objects.get(action="broadcast.start")
    assert entry.actor_name == "olivia" and entry.after["tier"] == "everyone" and broadcast.created_by == operator


def test_a_broadcast_the_bot_has_no_token_for_fails_and_says_why(bot_settings, tg, client, operator):
    bot_settings.TELEGRAM_BOT_TOKEN = ""
    UserFactory.create_batch(2)
    client.force_login(operator)
    response = client.post("/broadcasts/", {"text": "Maintenance at 10:00", "tier": ""})
    assert finished(Broadcast.objects.get().pk).status == "failed"
    page = client.get(response.url).content.decode()
    assert "Failed" in page and "The bot has no token: set TELEGRAM_BOT_TOKEN." in page and "Traceback" not in page
    assert not tg.calls_of("sendMessage")


def test_a_broadcast_whose_token_telegram_rejects_fails_and_never_shows_the_token(
    bot_settings, tg, client, operator, caplog
):
    bot_settings.TELEGRAM_BOT_TOKEN = "123456:rejected-SECRET-half"
    UserFactory.create_batch(2)
    client.force_login(operator)
    response = client.post("/broadcasts/", {"text": "Maintenance at 10:00", "tier": ""})
    assert finished(Broadcast.objects.get().pk).status == "failed"
    page = client.get(response.url).content.decode()
    assert "Telegram rejected the bot&#x27;s token (TELEGRAM_BOT_TOKEN)." in page
    in_chinese = client.get(response.url, HTTP_ACCEPT_LANGUAGE="zh-hant").content.decode()
    assert "Telegram 拒絕了機器人的權杖（TELEGRAM_BOT_TOKEN）。" in in_chinese
    assert "SECRET-half" not in page and "SECRET-half" not in caplog.text


def test_an_empty_broadcast_is_refused(client, operator):
    client.force_login(operator)
    page = client.post("/broadcasts/", {"text": "   ", "tier": ""}).content.decode()
    assert "Write the message to send." in page or "This field is required." in page
    assert not Broadcast.objects.exists()


def test_broadcasts_and_the_audit_log_are_for_staff_only(client):
    for url in ["/broadcasts/", "/audit/"]:
        assert client.get(url).status_code == 302
    client.force_login(get_user_model().objects.create_user("visitor"))
    for url in ["/broadcasts/", "/audit/"]:
        assert client.get(url).status_code == 403


def test_the_audit_log_shows_who_changed_what(admin_client, default_tiers):
    admin = get_user_model().objects.get(username="admin")
    user = UserFactory(username="<b>eve</b>", tier=Tier.objects.get(name="free"))
    staff.change_tier(actor=admin, user=user, tier=Tier.objects.get(name="premium"))
    page = admin_client.get("/audit/?action=user.tier").content.decode()
    assert "moved @&lt;b&gt;eve&lt;/b&gt;" in page and "tier: free → premium" in page
