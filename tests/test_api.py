"""The staff JSON API at /api/: who gets in, and that its changes are the staff services' changes."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry, BannedKeyword, hash_key
from botcore import generations
from botcore.models import Generation
from tests.factories import KeywordFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def operator():
    return User.objects.create_user("olivia", password="pw", is_staff=True)


def token_for(user, key="secret-key"):
    return ApiToken.objects.create(user=user, name="script", key_hash=hash_key(key))


@pytest.fixture
def api(operator):
    """A client sending olivia's API token."""
    token_for(operator)
    return Client(headers={"Authorization": "Bearer secret-key"})


def ask(user):
    identity = generations.Identity(telegram_id=user.telegram_id)
    return generations.request(identity=identity, chat_id=user.telegram_id, prompt="a paper crane")


def test_without_credentials_the_api_answers_401(client):
    assert client.get("/api/stats").status_code == 401
    assert client.post("/api/keywords", {"phrase": "x"}, content_type="application/json").status_code == 401
    assert client.get("/api/stats", headers={"Authorization": "Bearer unknown"}).status_code == 401


def test_non_staff_get_403_by_session_and_by_token(client):
    visitor = User.objects.create_user("visitor")
    client.force_login(visitor)
    assert client.get("/api/stats").status_code == 403
    token_for(visitor, "visitor-key")
    assert Client().get("/api/stats", headers={"X-API-Key": "visitor-key"}).status_code == 403


def test_a_staff_token_works_and_its_use_is_noted(operator):
    token = token_for(operator)
    UserFactory.create_batch(2)
    response = Client().get("/api/stats", headers={"X-API-Key": "secret-key"})
    assert response.status_code == 200
    assert response.json()["users"] == 2 and response.json()["delivered"] == 0
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_session_auth_needs_the_csrf_token_for_changes(operator):
    UserFactory(telegram_id=42)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    assert browser.get("/api/users/42").status_code == 200  # reads need no CSRF token
    grant = {"path": "/api/users/42/grant", "data": {"count": 2}, "content_type": "application/json"}
    refused = browser.post(**grant)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.get("/login/")  # a page with a form sets the CSRF cookie
    response = browser.post(**grant, headers={"X-CSRFToken": browser.cookies["csrftoken"].value})
    assert response.status_code == 200
    assert AuditEntry.objects.get().actor == operator


def test_staff_search_and_page_through_users(api):
    gold = TierFactory(name="gold")
    UserFactory(username="ada_lovelace", tier=gold)
    UserFactory(username="grace", first_name="Grace", telegram_id=777)
    UserFactory.create_batch(3)
    assert [u["username"] for u in api.get("/api/users?q=ada").json()["items"]] == ["ada_lovelace"]
    assert [u["telegram_id"] for u in api.get("/api/users?q=777").json()["items"]] == [777]
    assert api.get("/api/users?tier=gold").json()["items"][0]["tier"] == "gold"
    page = api.get("/api/users?limit=2&offset=1").json()
    assert page["count"] == 5 and len(page["items"]) == 2
    too_many = api.get("/api/users?limit=201")
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["query", "limit"]


def test_changing_a_tier_is_audited_with_the_api_user_as_actor(api, operator):
    UserFactory(telegram_id=42, tier=TierFactory(name="silver"))
    TierFactory(name="gold")
    response = api.post("/api/users/42/tier", {"tier": "gold"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["tier"] == "gold"
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.before, entry.after) == (
        operator,
        "user.tier",
        {"tier": "silver"},
        {"tier": "gold"},
    )
    unknown = api.post("/api/users/42/tier", {"tier": "platinum"}, content_type="application/json")
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "payload", "tier"]
    assert api.post("/api/users/9/tier", {"tier": "gold"}, content_type="application/json").status_code == 404


def test_ban_unban_and_grant_change_what_a_user_may_request(api):
    user = UserFactory(telegram_id=42, tier=TierFactory(daily_limit=1, max_concurrent_jobs=5))
    ban = {"reason": "spam", "expires_at": (timezone.now() + timedelta(days=1)).isoformat()}
    banned = api.post("/api/users/42/ban", ban, content_type="application/json").json()
    assert banned["banned"] and banned["ban"]["reason"] == "spam" and banned["ban"]["created_by"] == "olivia"
    with pytest.raises(generations.Refusal) as refused:
        ask(user)
    assert refused.value.code == "banned"

    assert api.post("/api/users/42/unban").json()["banned"] is False
    ask(user)
    with pytest.raises(generations.Refusal) as refused:
        ask(user)
    assert refused.value.code == "quota"

    granted = api.post("/api/users/42/grant", {"count": 1}, content_type="application/json").json()
    assert granted["remaining_today"] == 1
    assert ask(user)
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["user.grant", "user.unban", "user.ban"]


def test_invalid_input_is_422_naming_the_field(api):
    UserFactory(telegram_id=42)
    too_many = api.post("/api/users/42/grant", {"count": 5000}, content_type="application/json")
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["body", "payload", "count"]
    past = {"reason": "spam", "expires_at": "2020-01-01T00:00:00Z"}
    refused = api.post("/api/users/42/ban", past, content_type="application/json")
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "type": "value_error",
            "loc": ["body", "payload", "expires_at"],
            "msg": "A ban's expiry must be in the future.",
        }
    ]
    assert not AuditEntry.objects.exists()


def test_a_keyword_added_by_api_is_matched_at_once(api, django_capture_on_commit_callbacks):
    prompt = {"prompt": "a FAKE-passport photo"}
    assert api.post("/api/keywords/test", prompt, content_type="application/json").json()["matched"] is False
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/keywords", {"phrase": "fake passport"}, content_type="application/json")
    assert created.status_code == 201
    match = api.post("/api/keywords/test", prompt, content_type="application/json").json()
    assert match["matched"] and match["keyword"]["id"] == created.json()["id"]

    duplicate = api.post("/api/keywords", {"phrase": "fake passport"}, content_type="application/json")
    assert duplicate.status_code == 422 and duplicate.json()["detail"][0]["loc"] == ["body", "payload", "phrase"]
    with django_capture_on_commit_callbacks(execute=True):
        api.patch(f"/api/keywords/{created.json()['id']}", {"is_active": False}, content_type="application/json")
    assert api.post("/api/keywords/test", prompt, content_type="application/json").json()["matched"] is False
    assert BannedKeyword.objects.count() == 1
    assert AuditEntry.objects.filter(action="keyword.update").get().after["is_active"] is False


def test_generations_are_listed_newest_first_with_filters(api):
    ada, bob = UserFactory(telegram_id=1), UserFactory(telegram_id=2)
    now = timezone.now()
    for minutes, user, status in [(3, ada, "delivered"), (2, bob, "failed"), (1, ada, "failed")]:
        Generation.objects.create(
            user=user, chat_id=1, prompt="p", status=status, created_at=now - timedelta(minutes=minutes)
        )
    listed = api.get("/api/generations").json()
    assert [g["telegram_id"] for g in listed["items"]] == [1, 2, 1]
    assert api.get("/api/generations?status=failed&telegram_id=1").json()["count"] == 1
    assert api.get("/api/generations?status=lost").status_code == 422


def test_the_cost_report_is_the_dashboards_as_data(api, admin_client):
    user = UserFactory(username="ada", tier=TierFactory(name="Pro"))
    for resolution in ["2K", "2K", "4K"]:
        Generation.objects.create(
            user=user,
            tier="Pro",
            chat_id=1,
            prompt="p",
            status="delivered",
            model="m",
            resolution=resolution,
            cost_usd="0.134",
        )
    Generation.objects.create(
        user=user, chat_id=1, prompt="p", status="failed", model="m", created_at=timezone.now() - timedelta(days=40)
    )
    costs = api.get("/api/costs").json()
    assert (costs["delivered"], costs["failed"]) == (3, 0) and costs["spend"] == pytest.approx(0.402)
    assert len(costs["days"]) == 30 and costs["days"][-1]["delivered"] == 3
    assert [(row["resolution"], row["delivered"]) for row in costs["models"]] == [("2K", 2), ("4K", 1)]
    assert [(row["tier"], row["delivered"]) for row in costs["tiers"]] == [("Pro", 3)]
    assert [(row["username"], row["tier"], row["delivered"]) for row in costs["users"]] == [("ada", "Pro", 3)]
    assert api.get("/api/costs?range=90").json()["failed"] == 1

    page = admin_client.get("/costs/", {"range": "90"}).context
    assert costs["first"] != str(page["first"]) and api.get("/api/costs?range=90").json()["first"] == str(page["first"])


def test_a_cost_report_range_that_cannot_be_used_is_a_422_naming_the_field(api):
    assert api.get("/api/costs?range=7").status_code == 422
    backwards = api.get("/api/costs?range=custom&from=2025-03-05&to=2025-03-01")
    assert backwards.status_code == 422 and "must not be after" in backwards.json()["detail"][0]["msg"]
    too_long = api.get("/api/costs?from=2024-01-01&to=2025-12-31").json()["detail"][0]
    assert too_long["loc"] == ["query", "from"] and "366" in too_long["msg"]


def test_docs_and_schema_are_for_staff(client, operator):
    assert client.get("/api/docs").status_code == 302
    client.force_login(operator)
    assert client.get("/api/docs").status_code == 200
    schema = client.get("/api/openapi.json").json()
    assert schema["info"]["title"] == "NanoBot API" and "/api/users/{telegram_id}/ban" in schema["paths"]
    assert "is_active" in schema["paths"]["/api/keywords/{keyword_id}"]["patch"]["description"]


def test_create_api_token_prints_a_key_that_authenticates(operator, capsys):
    call_command("create_api_token", "olivia", "grafana")
    key = capsys.readouterr().out.split("\n\n")[1].strip()
    assert ApiToken.objects.get().key_hash == hash_key(key) != key
    assert Client().get("/api/stats", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_the_api_refuses_what_the_dashboard_refuses_naming_the_field(api):
    user = UserFactory()
    KeywordFactory(phrase="bad word")
    refusals = [
        api.post("/api/keywords", {"phrase": "Bad-Word"}, content_type="application/json"),
        api.post(f"/api/users/{user.telegram_id}/tier", {"tier": user.tier.name}, content_type="application/json"),
        api.post(f"/api/users/{user.telegram_id}/unban"),
        api.post(
            f"/api/users/{user.telegram_id}/ban",
            {"reason": "spam", "expires_at": "9999-12-31T23:59:59"},
            content_type="application/json",
        ),
    ]
    assert [response.status_code for response in refusals] == [422] * 4
    fields = [response.json()["detail"][0]["loc"][-1] for response in refusals]
    assert fields == ["phrase", "tier", "__all__", "expires_at"]
    assert "the same as the keyword “bad word”" in refusals[0].json()["detail"][0]["msg"]
    assert BannedKeyword.objects.count() == 1 and not AuditEntry.objects.exists()


def test_stats_count_todays_images_by_outcome_and_those_in_progress(api):
    user = UserFactory()
    (delivered,) = ask(user)
    generations.finish(delivered, Generation.Status.DELIVERED, cost_usd="0.134")
    ask(user)
    stats = api.get("/api/stats").json()
    assert (stats["delivered"], stats["failed"], stats["in_progress"]) == (1, 0, 1)
    assert stats["spend"] == pytest.approx(0.134)


def test_a_monitoring_script_reads_the_status_panel_and_sees_the_bot_down(api, settings):
    settings.MONTHLY_BUDGET_USD = None
    checks = {check["name"]: check for check in api.get("/api/status").json()}
    assert checks["Bot"]["level"] == "bad" and "python manage.py runbot" in checks["Bot"]["advice"]
    assert checks["Jobs"]["level"] == "ok" and checks["Jobs"]["summary"] == "0 queued, 0 running."
    in_chinese = api.get("/api/status", headers={"Accept-Language": "zh-hant"}).json()
    assert in_chinese[0]["name"] == "機器人"  # the same words as the page, in the language asked for
