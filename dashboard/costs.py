"""Cost reports by day, tier, user, model and resolution, with charts and CSV export."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import path
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy

from accounts import days

from . import budget, spreadsheets
from .access import staff_required
from .costreports import CostReport, bar_chart, line_chart
from .ranges import PRESETS, PeriodForm, period

# The report's tables sort by any column (?sort=table.column, -table.column the other way), in Python:
# they are small and already read. A first click sorts numbers and days most first, words A to Z.
TEXT, NUMBER, DATE = "text", "number", "date"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = NUMBER
    value: Callable[[dict], Any] | None = None  # the value sorted on; default: row[key]

    def of(self, row):
        return self.value(row) if self.value else row[self.key]


DELIVERED, FAILED, SPEND = (
    Column("delivered", gettext_lazy("Delivered")),
    Column("failed", gettext_lazy("Failed")),
    Column("spend", gettext_lazy("Spend")),
)
REVENUE = [
    Column("stars", gettext_lazy("Stars")),
    Column("revenue", gettext_lazy("Revenue")),
    Column("margin", gettext_lazy("Margin")),
]
TABLES = {
    "day": [Column("day", gettext_lazy("Day"), DATE), DELIVERED, FAILED, SPEND, *REVENUE],
    "week": [Column("day", gettext_lazy("Week"), DATE), DELIVERED, FAILED, SPEND, *REVENUE],
    "tier": [Column("tier", gettext_lazy("Tier"), TEXT), DELIVERED, FAILED, SPEND],
    "user": [
        Column("name", gettext_lazy("User"), TEXT),
        Column("tier", gettext_lazy("Tier"), TEXT, lambda row: row["user"].tier.name),
        DELIVERED,
        FAILED,
        SPEND,
    ],
    "model": [
        Column("model", gettext_lazy("Model"), TEXT),
        Column("resolution", gettext_lazy("Resolution"), TEXT),
        DELIVERED,
        Column("cache_hits", gettext_lazy("Cache hits")),
        FAILED,
        SPEND,
        Column("per_image", gettext_lazy("Per image")),
    ],
}
# As the report has them: newest day first, most spent first, models A to Z.
DEFAULT_SORTS = {
    "day": ("day", True),
    "week": ("day", True),
    "tier": ("spend", True),
    "user": ("spend", True),
    "model": ("model", False),
}
WEEKS_AFTER = 31  # days: a longer range's table has a row per week, each linking to its days


def _sort_asked(value):
    """(table, column, descending) from ?sort=, or None when it names no column."""
    descending = value.startswith("-")
    table, _, key = value.removeprefix("-").partition(".")
    if any(column.key == key for column in TABLES.get(table, ())):
        return table, key, descending
    return None


def _sorted(rows, table, asked, query):
    """`rows` sorted as asked (else as the report has them), and the table's headers: each a link
    sorting by its column, the current one marked."""
    key, descending = asked[1:] if asked and asked[0] == table else DEFAULT_SORTS[table]
    column = next(column for column in TABLES[table] if column.key == key)
    text = column.kind == TEXT
    known = [row for row in rows if column.of(row) is not None]
    # Stable: rows that tie keep the report's order (by spend, then images, then name).
    known.sort(key=lambda row: str(column.of(row)).casefold() if text else column.of(row), reverse=descending)
    rows = known + [row for row in rows if column.of(row) is None]  # nothing to compare: last
    headers = []
    for each in TABLES[table]:
        current = each.key == key
        down = not descending if current else each.kind != TEXT
        sort = f"{'-' if down else ''}{table}.{each.key}"
        headers.append(
            {
                "label": each.label,
                "numeric": each.kind == NUMBER,
                "sorted": ("descending" if descending else "ascending") if current else None,
                "href": f"?{urlencode({**query, 'sort': sort})}#{'day' if table == 'week' else table}",
            }
        )
    return rows, headers


@staff_required
def report(request):
    first, last, form = period(request.GET)
    if not form.errors:  # show the range in effect, preset or not, in the custom range's fields
        form = PeriodForm(initial={"from": first, "to": last})
    today = days.today()
    costs = CostReport(first, last)
    query = {"range": "custom", "from": first.isoformat(), "to": last.isoformat()}
    asked = _sort_asked(request.GET.get("sort", ""))
    weekly = len(costs.days) > WEEKS_AFTER
    day_rows, day_headers = _sorted(costs.weeks if weekly else costs.days, "week" if weekly else "day", asked, query)
    tiers, tier_headers = _sorted(costs.tiers, "tier", asked, query)
    users, user_headers = _sorted(costs.users, "user", asked, query)
    models, model_headers = _sorted(costs.models, "model", asked, query)
    context = {
        "form": form,
        "preset": next((key for key, n in PRESETS.items() if last == today and (last - first).days + 1 == n), None),
        "first": first,
        "last": last,
        "days": costs.days,
        "weekly": weekly,
        "day_rows": day_rows,
        "totals": costs.totals,
        "stars_usd_rate": settings.STARS_USD_RATE,
        "spend_chart": line_chart(costs.days, "spend", money=True, budget=budget.daily_share),
        "images_chart": bar_chart(costs.days, "delivered"),
        "tiers": tiers,
        "users": users,
        "models": models,
        "headers": {"day": day_headers, "tier": tier_headers, "user": user_headers, "model": model_headers},
        "range_query": urlencode({"from": first.isoformat(), "to": last.isoformat()}),
        "export_query": urlencode(query),
    }
    return render(request, "dashboard/costs/report.html", context)


# CSV exports (spreadsheets.py): one per table.


def _days_csv(costs):
    yield ["date", "delivered", "failed", "spend_usd", "stars", "revenue_usd", "margin_usd"]
    for row in costs.days:
        yield [
            row["day"].isoformat(),
            row["delivered"],
            row["failed"],
            spreadsheets.usd(row["spend"]),
            row["stars"],
            spreadsheets.usd(row["revenue"]),
            spreadsheets.usd(row["margin"]),
        ]


def _tiers_csv(costs):
    yield ["tier", "delivered", "failed", "spend_usd"]
    for row in costs.tiers:
        yield [spreadsheets.text(row["tier"]), row["delivered"], row["failed"], spreadsheets.usd(row["spend"])]


def _users_csv(costs):
    yield ["telegram_id", "username", "first_name", "tier", "delivered", "failed", "spend_usd"]
    for row in costs.all_users:
        user = row["user"]
        yield [
            user.telegram_id,
            spreadsheets.text(user.username),
            spreadsheets.text(user.first_name),
            spreadsheets.text(user.tier.name),
            row["delivered"],
            row["failed"],
            spreadsheets.usd(row["spend"]),
        ]


def _models_csv(costs):
    yield ["model", "resolution", "delivered", "cache_hits", "failed", "spend_usd", "usd_per_image"]
    for row in costs.models:
        yield [
            spreadsheets.text(row["model"]),
            row["resolution"],
            row["delivered"],
            row["cache_hits"],
            row["failed"],
            spreadsheets.usd(row["spend"]),
            spreadsheets.usd(row["per_image"], spreadsheets.PER_IMAGE),
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
    response.write(spreadsheets.encoded(EXPORTS[table](CostReport(first, last)), first=True))
    return response


urlpatterns = [
    path("costs/", report, name="costs"),
    path("costs/export/<slug:table>.csv", export, name="costs-export"),
]
