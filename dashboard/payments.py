"""Payments: the packs bought with Telegram Stars, newest first, with filters and totals; one payment, and
refunding it.

The list pages by keyset (keyset.py) on (paid_at, pk)."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.db.models import Count, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts import credits, days, staff
from accounts.models import Payment
from botcore.telegram import payments as telegram

from . import keyset
from .access import staff_required
from .costreports import stars_usd
from .filters import UserField
from .ranges import DateRangeForm

ANY = [("", _("any"))]


class FilterForm(DateRangeForm):
    status = forms.ChoiceField(label=_("Status"), choices=ANY + Payment.Status.choices, required=False)
    user = UserField()

    field_order = ["status", "user", "from", "to"]


def filtered(data):
    """The payments the list's (already cleaned) filters match."""
    payments = Payment.objects.select_related("user", "pack", "refunded_by")
    if data.get("user") is not None:
        payments = payments.filter(user_id__in=data["user"])
    if data.get("status"):
        payments = payments.filter(status=data["status"])
    if data.get("from"):
        payments = payments.filter(paid_at__gte=days.start_of(data["from"]))
    if data.get("to"):
        payments = payments.filter(paid_at__lt=days.start_of(data["to"] + timedelta(1)))
    return payments


def totals(payments):
    """How many of `payments` there are and the Stars they brought, by status: [(status's label, count,
    Stars, estimated USD)]."""
    rows = payments.order_by().values_list("status").annotate(Count("pk"), Sum("stars"))
    found = {status: (count, stars) for status, count, stars in rows}
    shown = [(label, found[status]) for status, label in Payment.Status.choices if status in found]
    return [(label, count, stars, stars_usd(stars)) for label, (count, stars) in shown]


@staff_required
def payment_list(request):
    form = FilterForm(request.GET)
    form.is_valid()  # invalid fields are reported and left out; the valid ones still filter
    data = form.cleaned_data
    payments = filtered(data)
    rows, previous, following = keyset.paged(request, payments, "paid_at")
    for payment in rows:
        payment.usd = stars_usd(payment.stars)
    context = {
        "form": form,
        "payments": rows,
        "previous": previous,
        "next": following,
        "totals": totals(payments),
        "unknown_user": data.get("user") == [],
    }
    return render(request, "dashboard/payments/list.html", context)


def unused_credits(payment):
    """The payment's credits not used (nor expired) yet: those a refund takes back."""
    return next((lot.left for lot in credits.lots(payment.user) if lot.entry.payment_id == payment.pk), 0)


def refunded_message(stars, taken):
    stars_text = ngettext("%(count)d Star", "%(count)d Stars", stars) % {"count": stars}
    return ngettext(
        "Refunded %(stars)s; %(credits)d unused credit taken back.",
        "Refunded %(stars)s; %(credits)d unused credits taken back.",
        taken,
    ) % {"stars": stars_text, "credits": taken}


@staff_required
def payment_detail(request, pk):
    """A payment, and for a paid one what a refund gives back and takes back, with its button: the
    refund's confirmation step."""
    payment = get_object_or_404(Payment.objects.select_related("user", "pack", "refunded_by"), pk=pk)
    context = {"payment": payment, "usd": stars_usd(payment.stars), "unused": unused_credits(payment)}
    return render(request, "dashboard/payments/detail.html", context)


@staff_required
@require_POST
def payment_refund(request, pk):
    payment = get_object_or_404(Payment.objects.select_related("user"), pk=pk)
    if payment.status != Payment.Status.PAID:
        messages.info(request, gettext("This payment was refunded already."))
        return redirect("dashboard:payment", pk=payment.pk)
    try:
        taken = telegram.refund(actor=request.user, payment=payment)
    except staff.StaffError as refusal:
        messages.error(request, str(refusal))
        return redirect("dashboard:payment", pk=payment.pk)
    messages.success(request, refunded_message(payment.stars, taken))
    return redirect("dashboard:payments")


urlpatterns = [
    path("payments/", payment_list, name="payments"),
    path("payments/<int:pk>/", payment_detail, name="payment"),
    path("payments/<int:pk>/refund/", payment_refund, name="payment-refund"),
]
