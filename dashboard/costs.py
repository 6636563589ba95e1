"""Cost reports by day, tier, user, model and resolution, with charts and CSV export."""

import csv
from datetime import timedelta

from django import forms
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import path
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from accounts.days import today as current_day  # "days" names a report's rows here
from botcore import summaries

from . import costreports
from .access import staff_required
from .generations import BACKWARDS, DateRangeForm

PRESETS = {"30": 30, "90": 90}
DEFAULT_DAYS = 30
MAX_DAYS = 366


class PeriodForm(DateRangeForm):
    range = forms.ChoiceField(
        choices=[("30", _("Last 30 days")), ("90", _("Last 90 days")), ("custom", _("Custom"))], required=False
    )
    field_order = ["range", "from", "to"]


def period(params):
    """(first, last, form): the days a report covers. A preset ends today; a custom range that
    can't be used falls back to the last 30 days, with the reason among the form's errors."""
    today = current_day()
    form = PeriodForm(params)
    fallback = (today - timedelta(DEFAULT_DAYS - 1), today)
    if not form.is_valid():
        return *fallback, form
    data = form.cleaned_data
    choice = data["range"] or ("custom" if data.get("from") or data.get("to") else str(DEFAULT_DAYS))
    if choice in PRESETS:
        return today - timedelta(PRESETS[choice] - 1), today, form
    last = data.get("to") or today
    first = data.get("from") or last - timedelta(DEFAULT_DAYS - 1)
    if first > last:  # `from` alone, after today: the form compares the days only when both are given
        form.add_error(None, BACKWARDS)
        return *fallback, form
    if (last - first).days >= MAX_DAYS:
        form.add_error(None, _("A range can be at most %(days)d days long.") % {"days": MAX_DAYS})
        return *fallback, form
    return first, last, form


@staff_required
def report(request):
    first, last, form = period(request.GET)
    if not form.errors:  # show the range in effect, preset or not, in the custom range's fields
        form = PeriodForm(initial={"from": first, "to": last})
    today = current_day()
    rows = summaries.rows(first, last)
    days = costreports.by_day(rows, first, last)
    context = {
        "form": form,
        "preset": next((key for key, n in PRESETS.items() if last == today and (last - first).days + 1 == n), None),
        "first": first,
        "last": last,
        "days": days,
        "totals": costreports.totals(days),
        "spend_chart": costreports.line_chart(days, "spend"),
        "images_chart": costreports.bar_chart(days, "delivered"),
        "tiers": costreports.by_tier(rows),
        "users": costreports.by_user(first, last),
        "models": costreports.by_model(rows),
        "range_query": urlencode({"from": first.isoformat(), "to": last.isoformat()}),
        "export_query": urlencode({"range": "custom", "from": first.isoformat(), "to": last.isoformat()}),
    }
    return render(request, "dashboard/costs/report.html", context)


# CSV: English headers and plain numbers, for spreadsheets and scripts.


def _text(value):
    """User text a spreadsheet would take for a formula gets a leading apostrophe."""
    value = str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _usd(value):
    return "" if value is None else f"{value:.4f}"


def _days_csv(first, last):
    yield ["date", "delivered", "failed", "spend_usd"]
    for row in costreports.by_day(summaries.rows(first, last), first, last):
        yield [row["day"].isoformat(), row["delivered"], row["failed"], _usd(row["spend"])]


def _tiers_csv(first, last):
    yield ["tier", "delivered", "failed", "spend_usd"]
    for row in costreports.by_tier(summaries.rows(first, last)):
        yield [_text(row["tier"]), row["delivered"], row["failed"], _usd(row["spend"])]


def _users_csv(first, last):
    yield ["telegram_id", "username", "first_name", "tier", "delivered", "failed", "spend_usd"]
    for row in costreports.by_user(first, last, limit=None):
        user = row["user"]
        yield [
            user.telegram_id,
            _text(user.username),
            _text(user.first_name),
            _text(user.tier.name),
            row["delivered"],
            row["failed"],
            _usd(row["spend"]),
        ]


def _models_csv(first, last):
    yield ["model", "resolution", "delivered", "cache_hits", "failed", "spend_usd", "usd_per_image"]
    for row in costreports.by_model(summaries.rows(first, last)):
        yield [
            _text(row["model"]),
            row["resolution"],
            row["delivered"],
            row["cache_hits"],
            row["failed"],
            _usd(row["spend"]),
            _usd(row["per_image"]),
        ]


EXPORTS = {"day": _days_csv, "tier": _tiers_csv, "user": _users_csv, "model": _models_csv}


@staff_required
def export(request, table):
    """One table of the report as CSV; the user table has every user, not just the top 50."""
    if table not in EXPORTS:
        raise Http404("No such table")
    first, last, form = period(request.GET)
    if form.errors:
        reasons = " ".join(str(error) for errors in form.errors.values() for error in errors)
        return HttpResponseBadRequest(reasons, content_type="text/plain; charset=utf-8")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="nanobot-costs-{table}-{first}-{last}.csv"'
    csv.writer(response).writerows(EXPORTS[table](first, last))
    return response


urlpatterns = [
    path("costs/", report, name="costs"),
    path("costs/export/<slug:table>.csv", export, name="costs-export"),
]
