"""The credit ledger: credits come in lots that may expire, are taken soonest-expiring first, and the
credits a user is shown are always what their ledger sums to."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import credits, payments, staff
from accounts.models import AuditEntry, CreditPack, LedgerEntry, TelegramUser, Tier
from botcore.models import Generation
from tests.factories import TierFactory, UserFactory
from tests.test_quota import ask_for_one, race

Kind, State = LedgerEntry.Kind, LedgerEntry.State


@pytest.fixture
def user(db):
    return TelegramUser.objects.create(telegram_id=700, tier=Tier.objects.get(name="free"))


def shown(user):
    user.refresh_from_db()
    assert user.credits == credits.in_ledger(user)
    return user.credits


def test_credits_are_taken_from_the_lot_that_expires_first(user):
    lasting = credits.add(user, 5, Kind.GRANT)
    expiring = credits.add(user, 2, Kind.PURCHASE, expires_at=timezone.now() + timedelta(days=3))

    held = credits.hold(user, 3)

    assert [entry.lot_id for entry in held] == [expiring.pk, expiring.pk, lasting.pk]
    assert shown(user) == 4


def test_unused_credits_expire_and_cannot_be_spent_after(user):
    credits.add(user, 4, Kind.PURCHASE, expires_at=timezone.now() + timedelta(days=1))
    [spent] = credits.hold(user, 1)
    credits.settle(spent.pk)

    assert credits.expire_due(now=timezone.now() + timedelta(days=2)) == 3
    assert shown(user) == 0
    assert credits.hold(user, 1) is None
    assert LedgerEntry.objects.get(kind=Kind.EXPIRY).images == -3


def test_a_hold_released_after_its_lot_expired_does_not_come_back(user):
    lot = credits.add(user, 2, Kind.GRANT, expires_at=timezone.now() + timedelta(hours=1))
    [held] = credits.hold(user, 1)  # an image still being made when the lot expires
    LedgerEntry.objects.filter(pk=lot.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert credits.expire_due() == 1

    credits.release(held.pk)  # the image failed: its credit would go back to a lot that is gone

    assert shown(user) == 0
    assert [e.images for e in LedgerEntry.objects.filter(kind=Kind.EXPIRY).order_by("pk")] == [-1, -1]


def test_a_kept_sum_that_drifted_from_the_ledger_is_not_trusted_and_is_recounted(user):
    credits.add(user, 2, Kind.GRANT)
    TelegramUser.objects.filter(pk=user.pk).update(credits=10)  # e.g. a hand edit in the database
    user.refresh_from_db()

    assert credits.hold(user, 5) is None
    out = io.StringIO()
    call_command("recount_credits", stdout=out)
    assert "10 kept, 2 in the ledger" in out.getvalue()
    assert shown(user) == 2


def test_staff_grant_credits_with_an_audit_entry(user, admin_user):
    admin = admin_user

    staff.grant_credits(actor=admin, user=user, count=10, note="sorry for the outage")

    assert shown(user) == 10
    entry = LedgerEntry.objects.get(user=user)
    assert (entry.kind, entry.actor, entry.note) == (Kind.GRANT, admin, "sorry for the outage")
    audit = AuditEntry.objects.get(action="user.credits")
    assert (audit.before, audit.after) == ({"credits": 0}, {"credits": 10, "granted": 10})
    with pytest.raises(staff.StaffError):
        staff.grant_credits(actor=admin, user=user, count=0)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_requests_past_the_free_images_take_the_last_credits_once():
    user = UserFactory(tier=TierFactory(daily_limit=0, max_concurrent_jobs=50))
    credits.add(user, 3, Kind.PURCHASE)

    results = race(12, lambda: ask_for_one(user))

    made = [r for r in results if isinstance(r, Generation)]
    assert len(made) == 3 and results.count("quota") == 9
    assert len({generation.credit_id for generation in made}) == 3
    assert shown(user) == 0


def test_refunding_a_pack_ends_its_tier_upgrade_but_not_one_bought_after_it(user):
    premium = Tier.objects.get(name="premium")
    pack = CreditPack.objects.create(name="Premium week", stars=100, images=5, tier=premium, tier_days=7)
    offer = payments.Offer.of(pack).payload
    first, _ = payments.credit(user=user, charge_id="stx1", payload=offer, stars=100)

    payments.refunded(actor=None, payment=first)
    user.refresh_from_db()
    assert (user.tier.name, user.tier_until) == ("free", None)

    second, _ = payments.credit(user=user, charge_id="stx2", payload=offer, stars=100)
    third, _ = payments.credit(user=user, charge_id="stx3", payload=offer, stars=100)  # extends it
    payments.refunded(actor=None, payment=second)
    user.refresh_from_db()
    assert user.tier.name == "premium" and user.tier_until == third.tier_until
