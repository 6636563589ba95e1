"""Staff broadcasts: previewed before they go, reach every active user (or one tier's), list who they did not
reach and why, and say plainly when they can't go: no token, no worker, or a sender that died, which staff can
then send on from where it stopped."""

import itertools
import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import staff
from accounts.models import AuditEntry, Broadcast, TelegramUser, Tier
from botcore import broadcasts, heartbeats
from botcore.models import Heartbeat
from tests.factories import TierFactory, UserFactory
from tests.fakes.telegram import ApiError
from tests.test_celery_worker import DEAD_BROKER_URL, celery_broker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("olivia", is_staff=True)


@pytest.fixture
def staff_client(client, operator):
    client.force_login(operator)
    return client


def received(tg):
    return {call.params["chat_id"]: call.params["text"] for call in tg.calls_of("sendMessage") if call.status == 200}


def deliveries(tg):
    """How many times each chat got a broadcast."""
    chats = [call.params["chat_id"] for call in tg.calls_of("sendMessage") if call.status == 200]
    return {chat: chats.count(chat) for chat in chats}


def finished(broadcast_id, timeout=15):
    """The broadcast once its background thread is done with it (and with its database connection)."""
    for thread in threading.enumerate():
        if thread.name == f"broadcast-{broadcast_id}":
            thread.join(timeout)
    return Broadcast.objects.get(pk=broadcast_id)


def preview(client, text, tier=""):
    return client.post("/broadcasts/", {"text": text, "tier": tier})


def send(client, text, tier=""):
    """The preview's Send button."""
    return client.post("/broadcasts/", {"text": text, "tier": tier, "action": "send"})


def page_of(client, broadcast):
    return client.get(f"/broadcasts/{broadcast.pk}/").content.decode()


def test_users_who_blocked_the_bot_are_counted_marked_inactive_and_listed(bot_settings, tg, staff_client, operator):
    alice, _, _ = [UserFactory(telegram_id=i, username=name) for i, name in ((101, "alice"), (102, "bob"), (103, "cy"))]
    tg.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")  # the first recipient: alice
    broadcast = Broadcast.objects.create(text="We are back <b>online</b> & fast", created_by=operator)

    done = async_to_sync(broadcasts.send)(broadcast.pk)

    assert (done.status, done.total, done.sent, done.blocked, done.failed) == ("done", 3, 2, 1, 0)
    assert received(tg) == {102: "We are back <b>online</b> & fast", 103: "We are back <b>online</b> & fast"}
    assert not TelegramUser.objects.get(pk=alice.pk).is_active
    page = page_of(staff_client, broadcast)
    assert "1 user not reached" in page
    assert f'<a href="/users/{alice.pk}/">@alice</a></td><td class="text">Blocked the bot.</td>' in page
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


def test_staff_see_who_a_broadcast_goes_to_and_how_it_reads_before_anything_is_sent(bot_settings, tg, staff_client):
    gold = TierFactory(name="gold")
    UserFactory.create_batch(3, tier=gold)
    UserFactory(tier=gold, is_active=False)
    UserFactory()  # on another tier

    page = preview(staff_client, "  Maintenance at 10:00 <i>UTC</i>\n& after  ", gold.pk).content.decode()

    assert "This goes to 3 users on tier gold. 1 who blocked the bot is skipped." in page
    assert (
        '<pre class="broadcast-text" id="preview">Maintenance at 10:00 &lt;i&gt;UTC&lt;/i&gt;\n&amp; after</pre>'
        in page
    )
    assert 'value="send"' in page and 'value="edit"' in page
    assert not Broadcast.objects.exists() and not AuditEntry.objects.exists() and not tg.calls_of("sendMessage")
    edit = staff_client.post("/broadcasts/", {"text": "Maintenance at 10:00", "tier": gold.pk, "action": "edit"})
    assert "Maintenance at 10:00</textarea>" in edit.content.decode() and not Broadcast.objects.exists()


def test_staff_send_a_broadcast_from_its_preview_and_see_it_finish(bot_settings, tg, staff_client, operator):
    UserFactory.create_batch(4)
    response = send(staff_client, "Maintenance at 10:00 <i>UTC</i>")
    assert response.status_code == 302
    broadcast = finished(Broadcast.objects.get().pk)
    page = staff_client.get(response.url).content.decode()
    assert '<b id="status">Done</b>' in page and "4 / 4" in page and "&lt;i&gt;UTC&lt;/i&gt;" in page
    assert '<progress id="progress" max="4" value="4">' in page
    assert f"{timezone.localtime(broadcast.finished_at):%Y-%m-%d %H:%M} UTC" in page
    assert "not reached" not in page and "broadcast.js" not in page  # done: nothing to follow
    entry = AuditEntry.objects.get(action="broadcast.start")
    assert entry.actor_name == "olivia" and entry.after["tier"] == "everyone" and broadcast.created_by == operator


def test_users_telegram_refuses_are_listed_with_the_reason_in_words(bot_settings, tg, staff_client, operator):
    lost, odd, fine = UserFactory(username="lost"), UserFactory(username="odd"), UserFactory()
    tg.fail_next("sendMessage", 400, "Bad Request: chat not found")
    tg.fail_next("sendMessage", 400, "Bad Request: <odd> & unheard of")
    broadcast = Broadcast.objects.create(text="Hello", created_by=operator)

    done = async_to_sync(broadcasts.send)(broadcast.pk)

    assert (done.status, done.sent, done.failed) == ("done", 1, 2) and set(received(tg)) == {fine.telegram_id}
    page = page_of(staff_client, broadcast)
    assert "2 users not reached" in page
    assert f'/users/{lost.pk}/">@lost</a></td><td class="text">Chat not found: they never started the bot' in page
    assert (
        f'/users/{odd.pk}/">@odd</a></td><td class="text">Telegram refused the message: &lt;odd&gt; &amp; unheard of'
        in page
    )


def test_a_broadcast_the_bot_has_no_token_for_fails_at_once_and_says_why(bot_settings, tg, staff_client):
    bot_settings.TELEGRAM_BOT_TOKEN = ""
    UserFactory.create_batch(2)
    sentence = "The bot has no token: set TELEGRAM_BOT_TOKEN."
    page = preview(staff_client, "Maintenance at 10:00").content.decode()
    assert sentence in page and 'value="send"' not in page  # nothing to send it with

    response = send(staff_client, "Maintenance at 10:00")

    assert Broadcast.objects.get().status == "failed"  # at once: no job was handed it
    page = staff_client.get(response.url).content.decode()
    assert '<b id="status">Failed</b>' in page and sentence in page and "Traceback" not in page
    assert not tg.calls_of("sendMessage")


def test_a_broadcast_whose_token_telegram_rejects_fails_and_never_shows_the_token(
    bot_settings, tg, staff_client, caplog
):
    bot_settings.TELEGRAM_BOT_TOKEN = "123456:rejected-SECRET-half"
    UserFactory.create_batch(2)
    response = send(staff_client, "Maintenance at 10:00")
    assert finished(Broadcast.objects.get().pk).status == "failed"
    page = staff_client.get(response.url).content.decode()
    assert "Telegram rejected the bot&#x27;s token (TELEGRAM_BOT_TOKEN)." in page
    in_chinese = staff_client.get(response.url, HTTP_ACCEPT_LANGUAGE="zh-hant").content.decode()
    assert "Telegram 拒絕了機器人的權杖（TELEGRAM_BOT_TOKEN）。" in in_chinese
    assert "SECRET-half" not in page and "SECRET-half" not in caplog.text


def test_a_broadcast_queued_while_no_worker_runs_says_so_and_goes_when_one_starts(bot_settings, tg, staff_client):
    bot_settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    UserFactory(telegram_id=301)
    page = preview(staff_client, "Hello").content.decode()
    assert "No worker is running: once sent, it waits until one starts" in page
    broadcast = Broadcast.objects.create(text="Hello", total=1)  # as the task queue holds it

    page = page_of(staff_client, broadcast)

    assert '<b id="status">Waiting for a worker</b>' in page
    assert "Waiting for a worker: none is running. It goes out as soon as one starts" in page
    assert "js/broadcast.js" in page  # the page follows it
    assert staff_client.get(f"/broadcasts/{broadcast.pk}/progress/").json()["state"] == "waiting"
    heartbeats.beat(Heartbeat.Kind.WORKER)
    assert '<b id="status">Queued</b>' in page_of(staff_client, broadcast)
    assert async_to_sync(broadcasts.send)(broadcast.pk).status == "done"  # as the worker runs it
    assert received(tg) == {301: "Hello"}


def test_a_broadcast_the_task_queue_cant_take_fails_and_says_why(bot_settings, tg, staff_client):
    bot_settings.CELERY_BROKER_URL = DEAD_BROKER_URL
    UserFactory.create_batch(2)
    with celery_broker(DEAD_BROKER_URL):
        response = send(staff_client, "Hello")
    assert (Broadcast.objects.get().status, Broadcast.objects.get().failure) == ("failed", "queue_unreachable")
    page = staff_client.get(response.url).content.decode()
    assert "The task queue (CELERY_BROKER_URL) could not be reached" in page and "Send the rest" in page


def test_a_broadcast_whose_sender_died_is_shown_stopped_and_sent_on_to_the_rest(bot_settings, tg, staff_client):
    users = [UserFactory(telegram_id=400 + i) for i in range(4)]
    # The process sending it had gone through the first two when it died.
    broadcast = Broadcast.objects.create(
        text="News", status="sending", run=1, total=4, sent=2, resume_after=users[1].pk, started_at=timezone.now()
    )
    assert '<b id="status">Sending</b>' in page_of(staff_client, broadcast)
    refused = staff_client.post(f"/broadcasts/{broadcast.pk}/resume/", follow=True).content.decode()
    assert "Only a broadcast that failed or stopped can be sent on." in refused  # still going, as far as we know
    Broadcast.objects.filter(pk=broadcast.pk).update(
        updated_at=timezone.now() - broadcasts.STALLED_AFTER - timedelta(minutes=1)
    )

    page = page_of(staff_client, broadcast)

    assert '<b id="status">Stopped</b>' in page and "Stopped: the process sending it died." in page
    assert "Send the rest" in page and "It goes on after the last user it went through (2 of 4)." in page
    staff_client.post(f"/broadcasts/{broadcast.pk}/resume/")
    done = finished(broadcast.pk)
    assert (done.status, done.sent, done.total) == ("done", 4, 4)
    assert received(tg) == {402: "News", 403: "News"}  # not again to the first two
    assert AuditEntry.objects.get(action="broadcast.resume").actor_name == "olivia"


def test_a_broadcast_telegram_stopped_answering_halfway_is_sent_on_to_the_rest_once(
    bot_settings, tg, staff_client, operator, monkeypatch
):
    first, second, third = [UserFactory(telegram_id=500 + i) for i in range(3)]
    calls, send_message = itertools.count(), tg._m_sendMessage

    def down_at_the_second(params, files):
        if next(calls) == 1:
            raise ApiError(500, "Internal Server Error")
        return send_message(params, files)

    monkeypatch.setattr(tg, "_m_sendMessage", down_at_the_second)
    broadcast = Broadcast.objects.create(text="News", created_by=operator)

    stopped = async_to_sync(broadcasts.send)(broadcast.pk)

    assert (stopped.status, stopped.sent) == ("failed", 1)
    page = page_of(staff_client, broadcast)
    assert "Telegram could not be reached; send it again later." in page and "Send the rest" in page
    staff_client.post(f"/broadcasts/{broadcast.pk}/resume/")
    assert finished(broadcast.pk).status == "done"
    assert deliveries(tg) == {first.telegram_id: 1, second.telegram_id: 1, third.telegram_id: 1}


def test_an_empty_broadcast_is_refused(staff_client):
    page = preview(staff_client, "   ").content.decode()
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
