"""Cost reports by day, tier, user, model and resolution, with charts and CSV export."""

import csv

from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import path
from django.utils.http import urlencode

from accounts import days

from .access import staff_required
from .costreports import CostReport, bar_chart, line_chart
from .ranges import PRESETS, PeriodForm, period


@staff_required
def report(request):
    first, last, form = period(request.GET)
    if not form.errors:  # show the range in effect, preset or not, in the custom range's fields
        form = PeriodForm(initial={"from": first, "to": last})
    today = days.today()
    costs = CostReport(first, last)
    context = {
        "form": form,
        "preset": next((key for key, n in PRESETS.items() if last == today and (last - first).days + 1 == n), None),
        "first": first,
        "last": last,
        "days": costs.days,
        "totals": costs.totals,
        "spend_chart": line_chart(costs.days, "spend"),
        "images_chart": bar_chart(costs.days, "delivered"),
        "tiers": costs.tiers,
        "users": costs.users,
        "models": costs.models,
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


def _days_csv(costs):
    yield ["date", "delivered", "failed", "spend_usd"]
    for row in costs.days:
        yield [row["day"].isoformat(), row["delivered"], row["failed"], _usd(row["spend"])]


def _tiers_csv(costs):
    yield ["tier", "delivered", "failed", "spend_usd"]
    for row in costs.tiers:
        yield [_text(row["tier"]), row["delivered"], row["failed"], _usd(row["spend"])]


def _users_csv(costs):
    yield ["telegram_id", "username", "first_name", "tier", "delivered", "failed", "spend_usd"]
    for row in costs.all_users:
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


def _models_csv(costs):
    yield ["model", "resolution", "delivered", "cache_hits", "failed", "spend_usd", "usd_per_image"]
    for row in costs.models:
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
    csv.writer(response).writerows(EXPORTS[table](CostReport(first, last)))
    return response


urlpatterns = [
    path("costs/", report, name="costs"),
    path("costs/export/<slug:table>.csv", export, name="costs-export"),
]
