"""The JSON API's credit packs, payments (and refunding one, through Telegram: so here, above botcore) and
a user's credits ledger."""

from datetime import date, datetime, timedelta

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from accounts import days
from accounts import payments as sales
from accounts.api import REFUSAL, Page, get_user
from accounts.models import Payment
from accounts.staff import StaffError
from botcore.telegram import payments as telegram

from .costreports import stars_usd
from .ranges import FIRST_DAY, LAST_DAY

router = Router(tags=["payments"])


class PackOut(Schema):
    id: int
    name: str
    stars: int = Field(description="Price in Telegram Stars.")
    images: int = Field(description="Credits: one image each, after the daily free images.")
    tier: str | None = Field(None, alias="tier.name", description="The tier the pack upgrades its buyer to, if any.")
    tier_days: int | None = Field(description="For this many days.")
    is_active: bool = Field(description="On sale in /buy.")
    sold: int = Field(description="Payments for it not refunded.")
    created_at: datetime


class PaymentOut(Schema):
    id: int
    telegram_id: int = Field(alias="user.telegram_id")
    username: str = Field(alias="user.username")
    pack_id: int | None = Field(description="Null once the pack is deleted; pack_name stays.")
    pack_name: str
    stars: int
    usd: float = Field(description="What the Stars bring in, estimated at STARS_USD_RATE.")
    images: int = Field(description="Credits bought.")
    tier: str = Field(description="The tier the pack upgraded the user to; empty for none.")
    tier_until: datetime | None
    charge_id: str = Field(description="Telegram's telegram_payment_charge_id.")
    status: Payment.Status
    paid_at: datetime
    refunded_at: datetime | None
    refunded_by: str | None = Field(None, alias="refunded_by.username")

    @staticmethod
    def resolve_usd(payment):
        return stars_usd(payment.stars)


class RefundOut(Schema):
    payment: PaymentOut
    credits_taken_back: int = Field(description="The payment's credits not used yet; used ones stay used.")


class LedgerEntryOut(Schema):
    id: int
    kind: str = Field(description="grant, purchase (these add a lot of credits), spend, refund or expiry.")
    images: int = Field(description="Credits added (positive) or taken (negative).")
    state: str = Field(description="A spend is held while its image is made, then done, or released (given back).")
    created_at: datetime
    expires_at: datetime | None = Field(description="A lot's unused credits expire then.")
    lot_id: int | None = Field(description="The lot a spend, refund or expiry took from.")
    payment_id: int | None
    generation_id: int | None = Field(None, description="The generation a spend paid for.")
    actor: str | None = Field(None, alias="actor.username", description="The staff member who granted it.")
    note: str

    @staticmethod
    def resolve_generation_id(entry):
        generation = getattr(entry, "generation", None)
        return generation.pk if generation else None


class PaymentFilter(Schema):
    status: Payment.Status | None = None
    telegram_id: int | None = None
    first: date | None = Field(None, alias="from", ge=FIRST_DAY, le=LAST_DAY, description="Paid on or after (a day).")
    last: date | None = Field(None, alias="to", ge=FIRST_DAY, le=LAST_DAY, description="Paid on or before.")


def payments():
    return Payment.objects.select_related("user", "refunded_by")


@router.get("/packs", response=list[PackOut], summary="List credit packs")
def list_packs(request):
    """Cheapest first, on sale or not."""
    return sales.with_sales()


@router.get("/payments", response=list[PaymentOut], summary="List payments")
@paginate(Page)
def list_payments(request, filters: Query[PaymentFilter]):
    """Newest first. Filter by `status`, `telegram_id` and the days paid (`from`, `to`); paginate with `limit`
    (at most 200) and `offset`."""
    found = payments().order_by("-paid_at", "-pk")
    if filters.status:
        found = found.filter(status=filters.status)
    if filters.telegram_id is not None:
        found = found.filter(user__telegram_id=filters.telegram_id)
    if filters.first:
        found = found.filter(paid_at__gte=days.start_of(filters.first))
    if filters.last:
        found = found.filter(paid_at__lt=days.start_of(filters.last + timedelta(1)))
    return found


@router.get("/payments/{int:payment_id}", response=PaymentOut, summary="One payment")
def payment_detail(request, payment_id: int):
    return get_object_or_404(payments(), pk=payment_id)


@router.post("/payments/{int:payment_id}/refund", response={200: RefundOut, **REFUSAL}, summary="Refund a payment")
def refund(request, payment_id: int):
    """Telegram gives the user their Stars back; the payment's credits not used yet are taken back and its
    tier upgrade ends. Audited. 422, saying why, when it was refunded already or Telegram refuses or can't
    be reached (then nothing changed)."""
    payment = get_object_or_404(payments(), pk=payment_id)
    if payment.status != Payment.Status.PAID:
        raise StaffError(_("This payment was refunded already."))
    taken = telegram.refund(actor=request.auth, payment=payment)
    return {"payment": get_object_or_404(payments(), pk=payment_id), "credits_taken_back": taken}


@router.get("/users/{telegram_id}/ledger", response=list[LedgerEntryOut], tags=["users"], summary="Credits ledger")
@paginate(Page)
def ledger(request, telegram_id: int):
    """Every change to the user's credits, newest first; paginate with `limit` and `offset`."""
    entries = get_user(telegram_id).ledger.select_related("actor", "generation")
    return entries.order_by("-created_at", "-pk")
