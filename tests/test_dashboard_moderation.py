"""Staff manage banned keywords (testing prompts as the bot sees them) and lift bans."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import moderation
from accounts.models import AuditEntry, Ban, BannedKeyword
from botcore import generations
from tests.factories import BanFactory, KeywordFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["/keywords/", "/keywords/{keyword}/", "/bans/"]


@pytest.fixture
def ids():
    return {"keyword": KeywordFactory().pk, "ban": BanFactory().pk}


def box_says(client, prompt):
    """The keyword the dashboard's test box says `prompt` matches, and the text it matched it in."""
    test = client.get("/keywords/", {"prompt": prompt}).context["test"]
    return test["match"], test["reading"]


def ask(user):
    identity = generations.Identity(telegram_id=user.telegram_id, username=user.username)
    return generations.request(identity=identity, chat_id=user.telegram_id, prompt="a paper crane")


@pytest.mark.parametrize("page", [*PAGES, "/bans/{ban}/lift/"])
def test_only_staff_reach_moderation_pages(client, page, ids):
    url = page.format(**ids)
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith("/login/?next=")
    assert client.post(url).status_code == 302
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert client.get(url).status_code == 403 and client.post(url).status_code == 403
    assert not AuditEntry.objects.exists() and not Ban.objects.filter(lifted_at__isnull=False).exists()


@pytest.mark.parametrize("page", PAGES)
def test_staff_see_moderation_pages(admin_client, page, ids):
    assert admin_client.get(page.format(**ids)).status_code == 200


def test_lifting_a_ban_takes_a_post(admin_client, ids):
    assert admin_client.get(f"/bans/{ids['ban']}/lift/").status_code == 405
    assert Ban.objects.get().lifted_at is None


def test_a_keyword_staff_add_is_matched_by_the_test_box_at_once(admin_client, django_capture_on_commit_callbacks):
    assert box_says(admin_client, "a FAKE pass-port") == (None, "afakepassport")  # the keyword cache is filled
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/keywords/", {"phrase": "fake passport", "note": "fraud"}, follow=True)
    assert "Keyword “fake passport” added." in response.content.decode()
    page = admin_client.get("/keywords/", {"prompt": "a FAKE pass-port"}).content.decode()
    assert "Refused: it matches “fake passport”." in page and "<code>afakepassport</code>" in page
    assert "No active keyword matches" in admin_client.get("/keywords/", {"prompt": "a real passport"}).content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.action, entry.after["is_active"]) == ("admin", "keyword.create", True)


def test_the_test_box_shows_what_a_prompt_with_look_alike_letters_was_read_as(admin_client):
    KeywordFactory(phrase="nude")
    page = admin_client.get("/keywords/", {"prompt": "a n\u0443de w\u043eman"}).content.decode()  # Cyrillic у, о
    assert "Refused: it matches “nude”." in page and "Matched as: <code>anudewoman</code>" in page
    assert box_says(admin_client, "ａ ｃａｔ") == (None, "acat")


def test_a_disabled_keyword_no_longer_matches(admin_client, django_capture_on_commit_callbacks):
    keyword = KeywordFactory(phrase="dragon", note="no dragons")
    assert box_says(admin_client, "a red DRAGON")[0] == "dragon"
    assert 'value="dragon"' in admin_client.get(f"/keywords/{keyword.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/keywords/{keyword.pk}/", {"phrase": "dragon", "note": "dragons are fine now"})
    assert box_says(admin_client, "a red DRAGON")[0] is None
    keyword.refresh_from_db()
    assert (keyword.is_active, keyword.note) == (False, "dragons are fine now")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.before["is_active"], entry.after["is_active"]) == ("keyword.update", True, False)


def test_a_keyword_must_have_letters_and_be_new(admin_client):
    KeywordFactory(phrase="fake passport")
    for phrase in ["!!!", "   ", "fake passport", "Fake  PASS-port"]:
        response = admin_client.post("/keywords/", {"phrase": phrase})
        assert response.status_code == 200 and "phrase" in response.context["form"].errors, phrase
    assert BannedKeyword.objects.count() == 1 and not AuditEntry.objects.exists()
    other = KeywordFactory(phrase="dragon")
    response = admin_client.post(f"/keywords/{other.pk}/", {"phrase": "FAKE passport", "is_active": "on"})
    assert "the same as the keyword “fake passport”" in response.context["form"].errors["phrase"][0]


def test_keyword_text_staff_typed_is_escaped(admin_client):
    KeywordFactory(phrase="<i>y</i>", note="<b>x</b>")
    page = admin_client.get("/keywords/", {"prompt": "<script>"}).content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "&lt;i&gt;y&lt;/i&gt;" in page and "<i>y</i>" not in page
    assert "&lt;script&gt;" in page and "<script>" not in page


def test_the_ban_list_filters_by_state(admin_client):
    now = timezone.now()
    BanFactory(reason="active forever")
    BanFactory(reason="active a while", expires_at=now + timedelta(days=1))
    BanFactory(reason="expired", expires_at=now - timedelta(days=1))
    BanFactory(reason="lifted", lifted_at=now - timedelta(hours=1))

    def shown(query):
        return sorted(ban.reason for ban in admin_client.get("/bans/", query).context["page"])

    assert shown({}) == shown({"status": "active"}) == ["active a while", "active forever"]
    assert shown({"status": "expired"}) == ["expired"]
    assert shown({"status": "lifted"}) == ["lifted"]
    assert len(shown({"status": "all"})) == 4
    assert shown({"status": "nonsense"}) == ["active a while", "active forever"]


def test_the_ban_list_shows_fifty_a_page(admin_client):
    user = UserFactory(username="mallory")
    BanFactory.create_batch(51, user=user, reason="<b>spam</b>")
    first = admin_client.get("/bans/")
    assert len(first.context["page"]) == 50 and "Page 1 of 2" in first.content.decode()
    assert "&lt;b&gt;spam&lt;/b&gt;" in first.content.decode() and "<b>spam" not in first.content.decode()
    assert len(admin_client.get("/bans/", {"page": 2}).context["page"]) == 1


def test_lifting_a_ban_lets_the_user_generate_again(admin_client):
    user = UserFactory(username="mallory")
    ban = BanFactory(user=user, reason="spam")
    with pytest.raises(generations.Refusal) as refused:
        ask(user)
    assert refused.value.code == "banned"

    response = admin_client.post(f"/bans/{ban.pk}/lift/", {"status": "all"})
    assert response.status_code == 302 and response.url == "/bans/?status=all"
    assert "The ban on @mallory is lifted." in admin_client.get(response.url).content.decode()
    ban.refresh_from_db()
    assert ban.lifted_at is not None and ban.lifted_by.username == "admin"
    entry = AuditEntry.objects.get()
    assert (entry.actor.username, entry.action, entry.target) == ("admin", "user.unban", "@mallory")
    assert ask(user)

    admin_client.post(f"/bans/{ban.pk}/lift/")  # a second lift changes nothing
    assert AuditEntry.objects.count() == 1


def test_a_keyword_can_be_switched_off_even_when_another_reads_the_same(admin_client):
    KeywordFactory(phrase="bad word")
    twin = KeywordFactory(phrase="Bad-Word")  # kept from before such twins were refused
    admin_client.post(f"/keywords/{twin.pk}/", {"phrase": "Bad-Word", "note": "a twin"})
    twin.refresh_from_db()
    assert not twin.is_active


def test_a_keyword_changed_since_the_page_was_opened_is_not_overwritten(admin_client):
    keyword = KeywordFactory(phrase="dragon", note="")
    seen = admin_client.get(f"/keywords/{keyword.pk}/").context["form"]["seen"].value()
    BannedKeyword.objects.filter(pk=keyword.pk).update(is_active=False)  # another staff member switched it off
    response = admin_client.post(
        f"/keywords/{keyword.pk}/", {"phrase": "dragon", "note": "why", "seen": seen, "is_active": "on"}
    )
    assert "Someone else changed this" in response.content.decode()
    keyword.refresh_from_db()
    assert (keyword.is_active, keyword.note) == (False, "")


def test_staff_delete_a_keyword_after_being_asked_and_prompts_with_it_pass_again(
    admin_client, django_capture_on_commit_callbacks
):
    keyword = KeywordFactory(phrase="dragon", note="no dragons")
    assert moderation.matching_keyword("a red DRAGON") == "dragon"  # the keyword cache is filled
    listing = admin_client.get("/keywords/").content.decode()
    assert f'<a href="/keywords/{keyword.pk}/delete/">Delete “dragon”</a>' in listing

    question = admin_client.get(f"/keywords/{keyword.pk}/delete/").content.decode()
    assert "Delete keyword “dragon”?" in question and BannedKeyword.objects.exists()  # asking deletes nothing
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/keywords/{keyword.pk}/delete/", follow=True)
    assert "Keyword “dragon” deleted." in response.content.decode()
    assert not BannedKeyword.objects.exists()
    assert moderation.matching_keyword("a red DRAGON") is None
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.action, entry.target) == ("admin", "keyword.delete", "keyword dragon")
    assert entry.before == {"phrase": "dragon", "is_active": True, "note": "no dragons"} and entry.after == {}
    assert admin_client.post(f"/keywords/{keyword.pk}/delete/").status_code == 404


def test_only_staff_delete_keywords(client):
    keyword = KeywordFactory()
    url = f"/keywords/{keyword.pk}/delete/"
    assert client.post(url).status_code == 302
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert client.post(url).status_code == 403
    assert BannedKeyword.objects.exists() and not AuditEntry.objects.exists()


def test_the_ban_list_links_users_gives_times_with_their_zone_and_asks_before_lifting(admin_client, settings):
    settings.TIME_ZONE = "Asia/Taipei"
    ban = BanFactory(user=UserFactory(username="mallory"), created_at=datetime(2026, 3, 1, 4, 5, tzinfo=UTC))
    page = admin_client.get("/bans/").content.decode()
    assert f'<a href="/users/{ban.user.pk}/">@mallory</a>' in page and "2026-03-01 12:05 CST" in page
    assert 'data-confirm="Lift the ban on @mallory? They can generate again at once."' in page
    assert '<script src="/static/js/confirm.js" defer></script>' in page
