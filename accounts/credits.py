"""Credits: images a user has bought (or staff granted) on top of their tier's daily free images.

The ledger (LedgerEntry) is the truth: a grant or purchase adds a lot of credits, which may expire; a
spend, refund or expiry takes from one lot. `TelegramUser.credits` is the ledger's sum kept up to date in
the same transaction as each entry, so that a reservation is one conditional UPDATE (like quota.reserve);
`recount` derives it from the ledger again.

A credit is held with its job (`hold`, in the transaction that queues it) and spent only on delivery
(`settle`); a job that fails gives it back (`release`).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import LedgerEntry, Payment, TelegramUser

log = logging.getLogger(__name__)

Kind = LedgerEntry.Kind
State = LedgerEntry.State
COUNTED = ~Q(state=State.RELEASED)  # a released hold counts for nothing


@dataclass(frozen=True)
class Lot:
    """Credits of one grant or purchase not used yet, and when they expire (None: never)."""

    entry: LedgerEntry
    left: int

    @property
    def expires_at(self) -> datetime | None:
        return self.entry.expires_at


def expiry(now: datetime | None = None) -> datetime | None:
    """When credits added now expire (CREDIT_EXPIRY_DAYS), or None."""
    if not settings.CREDIT_EXPIRY_DAYS:
        return None
    return (now or timezone.now()) + timedelta(days=settings.CREDIT_EXPIRY_DAYS)


@transaction.atomic
def add(
    user: TelegramUser,
    images: int,
    kind: str,
    *,
    payment: Payment | None = None,
    actor: User | None = None,
    note: str = "",
    expires_at: datetime | None = None,
) -> LedgerEntry:
    """A lot of `images` credits for `user` (a grant or a purchase)."""
    entry = LedgerEntry.objects.create(
        user=user, kind=kind, images=images, payment=payment, actor=actor, note=note, expires_at=expires_at
    )
    TelegramUser.objects.filter(pk=user.pk).update(credits=F("credits") + images)
    return entry


def hold(user: TelegramUser, count: int, now: datetime | None = None) -> list[LedgerEntry] | None:
    """Hold `count` credits of `user` for a job, one spend each, from the lots expiring first; None when
    they don't have that many. Call inside the transaction that queues the job: the UPDATE locks the user's
    row until it commits, so the same user's requests take credits one at a time."""
    now = now or timezone.now()
    expire_due(user, now)
    if not TelegramUser.objects.filter(pk=user.pk, credits__gte=count).update(credits=F("credits") - count):
        return None
    held: list[LedgerEntry] = []
    for lot in lots(user, now):
        take = min(lot.left, count - len(held))
        held += [
            LedgerEntry(user=user, kind=Kind.SPEND, images=-1, state=State.HELD, lot=lot.entry, created_at=now)
            for _ in range(take)
        ]
        if len(held) == count:
            return LedgerEntry.objects.bulk_create(held)
    # The kept sum said yes but the lots say no: it drifted from the ledger. Trust the ledger.
    log.error("credits of user %s drifted from their ledger; recounted", user.pk)
    recount(user)
    return None


def settle(entry_id: int) -> None:
    """The held credit's image was delivered: it is spent."""
    LedgerEntry.objects.filter(pk=entry_id, state=State.HELD).update(state=State.DONE)


def release(entry_id: int, now: datetime | None = None) -> None:
    """The held credit's image won't be delivered: the credit goes back, unless its lot expired meanwhile."""
    now = now or timezone.now()
    entry = LedgerEntry.objects.select_related("lot").filter(pk=entry_id, state=State.HELD).first()
    if entry is None or not LedgerEntry.objects.filter(pk=entry_id, state=State.HELD).update(state=State.RELEASED):
        return
    assert entry.lot is not None  # a spend always names its lot
    if entry.lot.expires_at is not None and entry.lot.expires_at <= now:
        LedgerEntry.objects.create(user_id=entry.user_id, kind=Kind.EXPIRY, images=-1, lot=entry.lot, created_at=now)
    else:
        TelegramUser.objects.filter(pk=entry.user_id).update(credits=F("credits") + 1)


def take_back(payment: Payment, kind: str = Kind.REFUND, actor: User | None = None) -> int:
    """Take a purchase's credits not used yet back (a refund): how many. Its spent ones stay spent."""
    lot = LedgerEntry.objects.filter(payment=payment, kind=Kind.PURCHASE).first()
    if lot is None:
        return 0
    return _empty(lot, kind, actor=actor)


def expire_due(user: TelegramUser | None = None, now: datetime | None = None) -> int:
    """Expire the unused credits of lots past their expiry (one user's, or everyone's): how many."""
    now = now or timezone.now()
    due = LedgerEntry.objects.filter(kind__in=[Kind.GRANT, Kind.PURCHASE], expires_at__lte=now)
    if user is not None:
        due = due.filter(user=user)
    return sum(_empty(lot, Kind.EXPIRY, now=now) for lot in _with_left(due).filter(left__gt=0))


def _empty(lot: LedgerEntry, kind: str, *, now: datetime | None = None, actor: User | None = None) -> int:
    with transaction.atomic():
        # Locked first, so a spend held at the same moment is counted, not raced.
        TelegramUser.objects.select_for_update().filter(pk=lot.user_id).first()
        left = _with_left(LedgerEntry.objects.filter(pk=lot.pk)).values_list("left", flat=True).get()
        if left <= 0:
            return 0
        LedgerEntry.objects.create(
            user_id=lot.user_id, kind=kind, images=-left, lot=lot, actor=actor, created_at=now or timezone.now()
        )
        TelegramUser.objects.filter(pk=lot.user_id).update(credits=F("credits") - left)
        return left


def lots(user: TelegramUser, now: datetime | None = None) -> list[Lot]:
    """The user's credits not used yet, lot by lot, those expiring first first."""
    now = now or timezone.now()
    live = LedgerEntry.objects.filter(user=user, kind__in=[Kind.GRANT, Kind.PURCHASE])
    live = live.filter(Q(expires_at=None) | Q(expires_at__gt=now))
    ordered = _with_left(live).filter(left__gt=0).order_by(F("expires_at").asc(nulls_last=True), "pk")
    return [Lot(entry, entry.left) for entry in ordered]


def _with_left(entries: QuerySet[LedgerEntry]) -> "QuerySet[Any]":
    """`entries` (lots) with `left`: their credits not taken yet."""
    taken = (
        LedgerEntry.objects.filter(COUNTED, lot=OuterRef("pk"))
        .order_by()
        .values("lot")
        .annotate(total=Sum("images"))
        .values("total")
    )
    return entries.annotate(left=F("images") + Coalesce(Subquery(taken), 0, output_field=IntegerField()))


def in_ledger(user: TelegramUser) -> int:
    """The user's credits as their ledger sums them (held ones counted as gone)."""
    return LedgerEntry.objects.filter(COUNTED, user=user).aggregate(total=Coalesce(Sum("images"), 0))["total"]


def recount(user: TelegramUser) -> int:
    """Set the user's kept credits to what the ledger says; that number."""
    with transaction.atomic():
        TelegramUser.objects.select_for_update().filter(pk=user.pk).first()
        total = in_ledger(user)
        TelegramUser.objects.filter(pk=user.pk).update(credits=max(total, 0))
    user.credits = max(total, 0)
    return user.credits
