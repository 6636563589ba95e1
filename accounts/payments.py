"""Credit packs sold for Telegram Stars: what is on sale, whether a checkout may go ahead, crediting a
payment exactly once, and the ledger side of a refund. Telegram's side (invoices, the refund call, the
sweep through the bot's Star transactions) is botcore/telegram/payments.py.

An invoice's payload names what was offered (pack, price, images, tier upgrade): the checkout is refused
when the pack no longer sells that, and a payment credits what its invoice said, even if the pack changed
since.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from . import credits, moderation
from .models import CreditPack, LedgerEntry, Payment, TelegramUser, Tier
from .staff import StaffError, field_values, record, unchanged_since
from .users import default_tier

log = logging.getLogger(__name__)

CURRENCY = "XTR"  # Telegram Stars: digital goods are sold for nothing else
PACK_FIELDS = ["name", "stars", "images", "tier_id", "tier_days", "is_active"]


@dataclass(frozen=True)
class Offer:
    """What an invoice offered, as its payload carries it."""

    pack_id: int
    stars: int
    images: int
    tier_id: int | None
    tier_days: int | None

    @classmethod
    def of(cls, pack: CreditPack) -> "Offer":
        return cls(pack.pk, pack.stars, pack.images, pack.tier_id, pack.tier_days if pack.tier_id else None)

    @property
    def payload(self) -> str:
        return f"pack:{self.pack_id}:{self.stars}:{self.images}:{self.tier_id or 0}:{self.tier_days or 0}"

    @classmethod
    def read(cls, payload: str) -> "Offer | None":
        name, *numbers = payload.split(":")
        if name != "pack" or len(numbers) != 5 or not all(n.isascii() and n.isdigit() for n in numbers):
            return None
        pack_id, stars, images, tier_id, tier_days = map(int, numbers)
        return cls(pack_id, stars, images, tier_id or None, tier_days or None)


def selling() -> bool:
    return CreditPack.objects.filter(is_active=True).exists()


def on_sale() -> list[CreditPack]:
    return list(CreditPack.objects.filter(is_active=True).select_related("tier"))


def with_sales() -> "QuerySet[CreditPack]":
    """Every pack, on sale or not, cheapest first, with `sold`: its payments not refunded."""
    sold = Count("payments", filter=Q(payments__status=Payment.Status.PAID))
    # Explicitly ordered: Meta.ordering isn't applied to a query that groups.
    return CreditPack.objects.select_related("tier").annotate(sold=sold).order_by("stars", "pk")


def offer(pack_id: int) -> CreditPack | None:
    """A pack on sale, for its invoice; None once it isn't."""
    return CreditPack.objects.filter(pk=pack_id, is_active=True).select_related("tier").first()


def checkout_refusal(*, telegram_id: int, payload: str, currency: str, total: int) -> str | None:
    """Why a checkout must not go ahead ("gone": the pack isn't sold like that any more; "banned"), or None.

    Telegram cancels a checkout not answered within 10 seconds: two indexed reads."""
    wanted = Offer.read(payload)
    pack = offer(wanted.pack_id) if wanted else None
    if wanted is None or pack is None or currency != CURRENCY or total != wanted.stars or Offer.of(pack) != wanted:
        return "gone"
    user = TelegramUser.objects.filter(telegram_id=telegram_id).first()
    if user is not None and moderation.active_ban(user):
        return "banned"
    return None


def credit(
    *, user: TelegramUser, charge_id: str, payload: str, stars: int, paid_at: datetime | None = None
) -> tuple[Payment, bool]:
    """Record a payment Telegram confirmed and credit what its invoice offered: (the payment, whether it
    is new). The payment row and its credits are one transaction, keyed by Telegram's charge id, so a
    payment reported again (a repeated update, the sweep) is credited once."""
    earlier = Payment.objects.filter(charge_id=charge_id).first()
    if earlier is not None:
        return earlier, False
    wanted = Offer.read(payload)
    if wanted is None:  # not an invoice of ours: kept, for staff to see and refund
        log.error("payment %s has a payload that names no pack: %r", charge_id, payload[:128])
    pack = CreditPack.objects.filter(pk=wanted.pack_id).first() if wanted else None
    now = paid_at or timezone.now()
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                user=user,
                pack=pack,
                pack_name=pack.name if pack else "?",
                stars=stars,
                images=wanted.images if wanted else 0,
                charge_id=charge_id,
                payload=payload[:128],
                paid_at=now,
            )
            if payment.images:
                credits.add(
                    user, payment.images, LedgerEntry.Kind.PURCHASE, payment=payment, expires_at=credits.expiry(now)
                )
            if wanted and wanted.tier_id and wanted.tier_days:
                _upgrade(user, payment, wanted.tier_id, wanted.tier_days)
    except IntegrityError:  # the same payment, credited by another process a moment ago
        return Payment.objects.get(charge_id=charge_id), False
    return payment, True


def _upgrade(user: TelegramUser, payment: Payment, tier_id: int, days: int) -> None:
    tier = Tier.objects.filter(pk=tier_id).first()
    if tier is None:
        return
    user = TelegramUser.objects.select_for_update().get(pk=user.pk)
    now = timezone.now()
    extending = user.tier_id == tier.pk and user.tier_until is not None and user.tier_until > now
    if user.tier_id == tier.pk and user.tier_until is None:
        return  # on that tier for good already
    if user.tier_until is None:
        user.tier_after = user.tier
    user.tier = tier
    user.tier_until = (user.tier_until if extending and user.tier_until else now) + timedelta(days=days)
    user.save(update_fields=["tier", "tier_until", "tier_after"])
    payment.tier, payment.tier_until = tier.name, user.tier_until
    payment.save(update_fields=["tier", "tier_until"])


def refunded(*, actor: User | None, payment: Payment) -> int:
    """Telegram gave the payment's Stars back: mark it refunded, take its unused credits back and end its
    tier upgrade; how many credits were taken back. Nothing again for a payment already refunded."""
    with transaction.atomic():
        if not Payment.objects.filter(pk=payment.pk, status=Payment.Status.PAID).update(
            status=Payment.Status.REFUNDED, refunded_at=timezone.now(), refunded_by=actor
        ):
            return 0
        taken = credits.take_back(payment, actor=actor)
        if payment.tier_until:  # its upgrade, if it is still the one running
            _end_upgrade(TelegramUser.objects.filter(pk=payment.user_id, tier_until=payment.tier_until))
        record(
            actor,
            "payment.refund",
            f"payment {payment.charge_id}",
            {"status": Payment.Status.PAID},
            {"status": Payment.Status.REFUNDED, "stars": payment.stars, "credits_taken_back": taken},
        )
    payment.refresh_from_db()
    return taken


def end_upgrades(now: datetime | None = None) -> int:
    """Move the users whose pack's tier upgrade ran out back to their tier before it: how many."""
    return _end_upgrade(TelegramUser.objects.filter(tier_until__lte=now or timezone.now()))


def _end_upgrade(users: "QuerySet[TelegramUser]") -> int:
    """Move `users` back from a pack's tier to the one before it (the default tier if that was deleted)."""
    ended = 0
    for user in users.select_related("tier_after"):
        back = user.tier_after or default_tier()
        # Only if still as read: a purchase or a staff change meanwhile decides instead.
        ended += users.filter(pk=user.pk, tier_until=user.tier_until).update(
            tier=back, tier_until=None, tier_after=None
        )
    return ended


@transaction.atomic
def save_pack(
    *, actor: User | None, pack: CreditPack | None = None, seen: str | None = None, **fields: Any
) -> CreditPack:
    """Create a pack (pack=None) or change one. `seen`: its version() when it was shown to staff."""
    if pack is not None:
        pack = CreditPack.objects.select_for_update().get(pk=pack.pk)
        unchanged_since(pack, PACK_FIELDS, seen)
    if fields.get("stars", 1) < 1:
        raise StaffError(_("A pack costs at least 1 Star."), "stars")
    if fields.get("images", 1) < 1:
        raise StaffError(_("A pack holds at least one image."), "images")
    if fields.get("tier") and not fields.get("tier_days"):
        raise StaffError(_("Say for how many days the pack upgrades the tier."), "tier_days")
    before = field_values(pack, PACK_FIELDS) if pack else {}
    pack = pack or CreditPack()
    for name, value in fields.items():
        setattr(pack, name, value)
    if not pack.tier_id:
        pack.tier_days = None
    pack.save()
    record(
        actor, "pack.update" if before else "pack.create", f"pack {pack.name}", before, field_values(pack, PACK_FIELDS)
    )
    return pack


@transaction.atomic
def delete_pack(*, actor: User | None, pack: CreditPack) -> None:
    """Take a pack off sale for good; its payments keep what they bought."""
    before = field_values(pack, PACK_FIELDS)
    pack.delete()
    record(actor, "pack.delete", f"pack {before['name']}", before, {})
