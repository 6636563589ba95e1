"""The JSON API's credit packs, payments, refunds and credits ledger: what a script sees and may do."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts import days
from accounts import payments as sales
from accounts.models import ApiToken, AuditEntry, hash_key
from tests.factories import PackFactory, PaymentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    """A client sending olivia's API token."""
    olivia = get_user_model().objects.create_user("olivia", is_staff=True)
    ApiToken.objects.create(user=olivia, name="script", key_hash=hash_key("secret-key"))
    return Client(headers={"Authorization": "Bearer secret-key"})


def bought(user, pack, tg):
    offer = sales.Offer.of(pack).payload
    tg.record_star_payment(user.telegram_id, offer, pack.stars, "stxTest1")
    payment, _new = sales.credit(user=user, charge_id="stxTest1", payload=offer, stars=pack.stars)
    return payment


def test_the_money_endpoints_are_for_staff(client):
    payment = PaymentFactory()
    ledger = f"/api/users/{payment.user.telegram_id}/ledger"
    for url in ["/api/packs", "/api/payments", f"/api/payments/{payment.pk}", ledger]:
        assert client.get(url).status_code == 401
    assert client.post(f"/api/payments/{payment.pk}/refund").status_code == 401
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert client.get("/api/payments").status_code == 403


def test_staff_list_packs_with_what_each_sold(api):
    pro = TierFactory(name="Pro")
    starter = PackFactory(name="Starter", stars=50)
    month = PackFactory(name="Pro month", stars=300, tier=pro, tier_days=30)
    PaymentFactory(pack=month)
    PaymentFactory(pack=month, status="refunded")
    packs = api.get("/api/packs").json()
    assert [(p["name"], p["tier"], p["tier_days"], p["sold"]) for p in packs] == [
        ("Starter", None, None, 0),
        ("Pro month", "Pro", 30, 1),
    ]
    assert packs[0]["id"] == starter.pk


def test_payments_are_listed_newest_first_with_filters(api, settings):
    settings.STARS_USD_RATE = Decimal("0.01")
    ann, ben = UserFactory(telegram_id=1, username="ann"), UserFactory(telegram_id=2)
    first = PaymentFactory(user=ann, stars=100, paid_at=days.start_of(date(2025, 3, 1)))
    refunded = PaymentFactory(user=ann, status="refunded", paid_at=days.start_of(date(2025, 3, 2)))
    other = PaymentFactory(user=ben, paid_at=days.start_of(date(2025, 3, 3)) + timedelta(hours=1))

    listed = api.get("/api/payments").json()
    assert listed["count"] == 3 and [p["id"] for p in listed["items"]] == [other.pk, refunded.pk, first.pk]
    assert api.get("/api/payments?status=refunded").json()["items"][0]["id"] == refunded.pk
    assert [p["id"] for p in api.get("/api/payments?telegram_id=1").json()["items"]] == [refunded.pk, first.pk]
    assert [p["id"] for p in api.get("/api/payments?from=2025-03-02&to=2025-03-02").json()["items"]] == [refunded.pk]
    assert api.get("/api/payments?limit=1&offset=2").json()["items"][0]["id"] == first.pk
    assert api.get("/api/payments?status=lost").status_code == 422

    one = api.get(f"/api/payments/{first.pk}").json()
    assert (one["username"], one["stars"], one["usd"], one["status"]) == ("ann", 100, 1.0, "paid")
    assert api.get("/api/payments/999999").status_code == 404


def test_a_refund_of_an_unknown_payment_is_404_and_of_a_refunded_one_422(api):
    assert api.post("/api/payments/999999/refund").status_code == 404
    refunded = PaymentFactory(status="refunded")
    response = api.post(f"/api/payments/{refunded.pk}/refund")
    assert response.status_code == 422 and response.json()["detail"][0]["msg"] == "This payment was refunded already."
    assert not AuditEntry.objects.exists()


def test_a_script_refunds_a_payment_through_telegram(api, bot_settings, tg):
    user = UserFactory(telegram_id=601)
    payment = bought(user, PackFactory(stars=50, images=3), tg)
    response = api.post(f"/api/payments/{payment.pk}/refund")
    assert response.status_code == 200
    assert response.json()["credits_taken_back"] == 3
    assert (response.json()["payment"]["status"], response.json()["payment"]["refunded_by"]) == ("refunded", "olivia")
    assert tg.calls_of("refundStarPayment")[0].params["user_id"] == 601
    assert AuditEntry.objects.get(action="payment.refund").actor.username == "olivia"
    assert api.get("/api/users/601").json()["credits"] == 0


def test_telegram_refusing_a_refund_is_a_422_saying_why(api, bot_settings, tg):
    payment = bought(UserFactory(), PackFactory(stars=50, images=3), tg)
    tg.fail_next("refundStarPayment", 400, "Bad Request: BALANCE_TOO_LOW")
    response = api.post(f"/api/payments/{payment.pk}/refund")
    assert response.status_code == 422 and "Telegram refused the refund" in response.json()["detail"][0]["msg"]
    payment.refresh_from_db()
    assert payment.status == "paid"


def test_a_users_ledger_and_credits(api, tg):
    user = UserFactory(telegram_id=601)
    payment = bought(user, PackFactory(stars=50, images=3), tg)
    api.post("/api/users/601/grant", {"count": 1}, content_type="application/json")  # today's images: not credits
    ledger = api.get("/api/users/601/ledger").json()
    assert ledger["count"] == 1
    assert [(e["kind"], e["images"], e["payment_id"]) for e in ledger["items"]] == [("purchase", 3, payment.pk)]
    assert api.get("/api/users/601").json()["credits"] == 3
    assert api.get("/api/users/999/ledger").status_code == 404
