"""Staff sell credit packs and look after payments from the dashboard: the packs on sale, the payments
made, and refunding one through Telegram (the fake Bot API)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import days
from accounts import payments as sales
from accounts.models import AuditEntry, CreditPack, LedgerEntry, Payment
from dashboard.keyset import PAGE_SIZE
from tests.factories import PackFactory, PaymentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["/packs/", "/packs/new/", "/packs/{pack}/", "/packs/{pack}/delete/", "/payments/", "/payments/{payment}/"]


def pack_form(**changes):
    """A pack form as the browser posts it: an unticked box is left out."""
    data = {"name": "Starter", "stars": "50", "images": "10", "tier": "", "tier_days": "", "is_active": "on"}
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def bought(user, pack, tg=None, paid_at=None):
    """`user` pays for `pack`, credited as the bot credits it; with `tg`, Telegram keeps the transaction."""
    charge_id = f"stxTest{Payment.objects.count() + 1}"
    offer = sales.Offer.of(pack).payload
    if tg is not None:
        tg.record_star_payment(user.telegram_id, offer, pack.stars, charge_id)
    payment, _new = sales.credit(user=user, charge_id=charge_id, payload=offer, stars=pack.stars, paid_at=paid_at)
    return payment


@pytest.mark.parametrize("page", PAGES)
def test_only_staff_see_the_pack_and_payment_pages(client, admin_client, page):
    payment = PaymentFactory()
    url = page.format(pack=payment.pack.pk, payment=payment.pk)
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith("/login/?next=")
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert client.get(url).status_code == 403 and client.post(url).status_code == 403
    assert admin_client.get(url).status_code == 200


def test_only_staff_refund_and_only_by_post(client, admin_client):
    payment = PaymentFactory()
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert client.post(f"/payments/{payment.pk}/refund/").status_code == 403
    assert admin_client.get(f"/payments/{payment.pk}/refund/").status_code == 405
    payment.refresh_from_db()
    assert payment.status == "paid" and not AuditEntry.objects.exists()


def test_staff_create_a_pack_with_a_tier_upgrade_and_see_it_listed(admin_client):
    pro = TierFactory(name="Pro")
    response = admin_client.post("/packs/new/", pack_form(name="Pro month", tier=pro.pk, tier_days="30"), follow=True)
    assert messages_of(response) == ["Pack “Pro month” saved."]
    pack = CreditPack.objects.get()
    assert (pack.stars, pack.images, pack.tier, pack.tier_days, pack.is_active) == (50, 10, pro, 30, True)
    entry = AuditEntry.objects.get()
    assert (entry.actor.username, entry.action, entry.target) == ("admin", "pack.create", "pack Pro month")

    PaymentFactory.create_batch(2, pack=pack)
    PaymentFactory(pack=pack, status="refunded")
    page = admin_client.get("/packs/").content.decode()
    assert "Pro for 30 days" in page and "on sale" in page
    assert admin_client.get("/packs/").context["packs"][0].sold == 2  # the refunded one is not sold


def test_a_pack_is_refused_with_form_errors(admin_client):
    pro = TierFactory(name="Pro")
    response = admin_client.post("/packs/new/", pack_form(tier=pro.pk, tier_days=""))
    assert response.context["form"].errors == {"tier_days": ["Say for how many days the pack upgrades the tier."]}
    response = admin_client.post("/packs/new/", pack_form(name="x" * 33, stars="0"))
    assert set(response.context["form"].errors) == {"name", "stars"}
    assert not CreditPack.objects.exists() and not AuditEntry.objects.exists()


def test_taking_a_pack_off_sale_keeps_it_and_a_stale_form_does_not_undo_a_change(admin_client):
    pack = PackFactory(name="Starter", stars=50)
    stale = admin_client.get(f"/packs/{pack.pk}/").context["form"]["seen"].value()
    admin_client.post(f"/packs/{pack.pk}/", pack_form(stars="60", is_active=None))
    pack.refresh_from_db()
    assert (pack.stars, pack.is_active) == (60, False)
    assert "not on sale" in admin_client.get("/packs/").content.decode()

    response = admin_client.post(f"/packs/{pack.pk}/", pack_form(stars="40", seen=stale))
    assert "Someone else changed this" in response.content.decode()
    pack.refresh_from_db()
    assert pack.stars == 60


def test_a_deleted_packs_payments_keep_its_name_and_what_they_bought(admin_client):
    pack = PackFactory(name="Big bundle", images=100)
    payment = bought(UserFactory(), pack)
    question = admin_client.get(f"/packs/{pack.pk}/delete/").content.decode()
    assert "Delete pack “Big bundle”?" in question and "1 payment bought it" in question
    assert CreditPack.objects.exists()

    response = admin_client.post(f"/packs/{pack.pk}/delete/", follow=True)
    assert messages_of(response) == ["Pack “Big bundle” deleted."] and not CreditPack.objects.exists()
    assert AuditEntry.objects.filter(action="pack.delete", target="pack Big bundle").exists()
    payment.refresh_from_db()
    assert (payment.pack, payment.pack_name, payment.images) == (None, "Big bundle", 100)
    assert payment.user.credits == 100
    page = admin_client.get("/payments/").content.decode()
    assert 'Big bundle <span class="muted">(deleted)</span>' in page


def test_payments_are_listed_newest_first_with_their_estimated_usd(admin_client, settings):
    settings.STARS_USD_RATE = Decimal("0.013")
    ann = UserFactory(username="ann")
    older = PaymentFactory(user=ann, stars=100, images=20, paid_at=timezone.now() - timedelta(days=1))
    newer = PaymentFactory(user=ann, stars=250, images=60)
    response = admin_client.get("/payments/")
    assert [p.pk for p in response.context["payments"]] == [newer.pk, older.pk]
    page = response.content.decode()
    assert f'<a href="/users/{ann.pk}/">@ann</a>' in page
    assert '<td class="n">250</td>\n      <td class="n">$3.25</td>\n      <td class="n">60</td>' in page
    assert "Paid: 2 payments, 350 Stars (about $4.55)" in page
    assert f'href="/payments/{newer.pk}/#refund">Refund…</a>' in page


def test_payments_filter_by_status_user_and_days(admin_client):
    ann, ben = UserFactory(username="ann", telegram_id=11), UserFactory(username="ben", telegram_id=12)
    march_1, march_3 = days.start_of(date(2025, 3, 1)), days.start_of(date(2025, 3, 3))
    paid = PaymentFactory(user=ann, paid_at=march_1 + timedelta(hours=23))
    refunded = PaymentFactory(user=ann, paid_at=march_3, status="refunded", refunded_at=march_3)
    other = PaymentFactory(user=ben, paid_at=march_3)

    def listed(**filters):
        response = admin_client.get("/payments/", filters)
        assert response.status_code == 200
        return [p.pk for p in response.context["payments"]]

    assert listed(status="refunded") == [refunded.pk]
    assert listed(status="paid") == [other.pk, paid.pk]
    assert listed(user="@ANN") == [refunded.pk, paid.pk] and listed(user="12") == [other.pk]
    assert listed(**{"from": "2025-03-01", "to": "2025-03-01"}) == [paid.pk]
    assert listed(**{"from": "2025-03-02"}) == [other.pk, refunded.pk]
    response = admin_client.get("/payments/", {"user": "nobody", "status": "lost"})
    assert "No user has that Telegram id or username." in response.content.decode()


def test_many_payments_page_older_and_back_keeping_the_filter(admin_client):
    ann = UserFactory(username="ann")
    start = timezone.now() - timedelta(days=1)
    made = [PaymentFactory(user=ann, paid_at=start + timedelta(minutes=n)) for n in range(PAGE_SIZE + 5)]
    PaymentFactory()  # someone else's: filtered out
    first = admin_client.get("/payments/", {"user": "@ann"})
    newest_first = [p.pk for p in reversed(made)]
    assert [p.pk for p in first.context["payments"]] == newest_first[:PAGE_SIZE] and first.context["previous"] is None
    assert "user=%40ann" in first.context["next"]
    second = admin_client.get("/payments/" + first.context["next"])
    assert [p.pk for p in second.context["payments"]] == newest_first[PAGE_SIZE:]
    back = admin_client.get("/payments/" + second.context["previous"])
    assert [p.pk for p in back.context["payments"]] == newest_first[:PAGE_SIZE]


def test_a_payment_says_what_its_refund_gives_back_and_takes_back(admin_client):
    user = UserFactory(username="ann")
    payment = bought(user, PackFactory(name="Starter", stars=50, images=3))
    LedgerEntry.objects.create(user=user, kind="spend", images=-1, lot=LedgerEntry.objects.get())  # one used
    page = admin_client.get(f"/payments/{payment.pk}/").content.decode()
    assert "Telegram gives @ann their 50 Stars back." in page
    assert "The 2 credits of this payment not used yet are taken back; used ones stay used." in page
    assert f'action="/payments/{payment.pk}/refund/"' in page and "Refund 50 Stars</button>" in page


def test_staff_refund_a_payment_through_telegram(admin_client, bot_settings, tg):
    user = UserFactory(username="ann")
    payment = bought(user, PackFactory(name="Starter", stars=50, images=3), tg)
    response = admin_client.post(f"/payments/{payment.pk}/refund/", follow=True)

    assert messages_of(response) == ["Refunded 50 Stars; 3 unused credits taken back."]
    [call] = tg.calls_of("refundStarPayment")
    assert call.params == {"user_id": user.telegram_id, "telegram_payment_charge_id": payment.charge_id}
    payment.refresh_from_db()
    user.refresh_from_db()
    assert (payment.status, payment.refunded_by.username, user.credits) == ("refunded", "admin", 0)
    entry = AuditEntry.objects.get(action="payment.refund")
    assert (entry.actor.username, entry.after["credits_taken_back"]) == ("admin", 3)
    assert "Refunded" in admin_client.get("/payments/", {"status": "refunded"}).content.decode()

    again = admin_client.post(f"/payments/{payment.pk}/refund/", follow=True)
    assert messages_of(again) == ["This payment was refunded already."]
    assert len(tg.calls_of("refundStarPayment")) == 1


def test_a_refund_telegram_made_already_counts_as_done(admin_client, bot_settings, tg):
    """The process died after Telegram refunded and before the refund was recorded: staff press again."""
    payment = bought(UserFactory(), PackFactory(stars=50, images=3), tg)
    tg.star_transactions.append({**tg.star_transactions[0], "receiver": tg.star_transactions[0]["source"]})
    del tg.star_transactions[-1]["source"]

    response = admin_client.post(f"/payments/{payment.pk}/refund/", follow=True)
    assert messages_of(response) == ["Refunded 50 Stars; 3 unused credits taken back."]
    assert tg.calls_of("refundStarPayment")[0].status == 400
    payment.refresh_from_db()
    assert payment.status == "refunded"


def test_telegram_refusing_a_refund_is_shown_and_changes_nothing(admin_client, bot_settings, tg):
    payment = bought(UserFactory(), PackFactory(stars=50, images=3), tg)
    tg.fail_next("refundStarPayment", 400, "Bad Request: BALANCE_TOO_LOW")

    response = admin_client.post(f"/payments/{payment.pk}/refund/", follow=True)
    assert response.redirect_chain == [(f"/payments/{payment.pk}/", 302)]
    assert messages_of(response) == ["Telegram refused the refund: Balance_too_low"]  # as PTB words it
    payment.refresh_from_db()
    assert payment.status == "paid" and payment.user.credits == 3
    assert not AuditEntry.objects.exists()
