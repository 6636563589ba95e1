"""Spend and images over a range of days in TIME_ZONE: by day, tier, user, model and resolution.

A CostReport is the one report that the page, its CSV exports and the JSON API render. Its tables by
day, tier and model add up the range's DaySummary rows (summaries.rows: kept for the closed days, summed
up on the fly for the open ones) with reports.figures_of, as the overview does; the top users add the
open days' generations to per-user totals of the closed days (kept in the cache), and one more query
names them. Days without generations are filled in here, and the charts' coordinates computed, so
templates only loop.

Revenue is what payments bring in (in Telegram Stars, and in USD at STARS_USD_RATE, an estimate): a
payment counts on the day it was paid, and its refund takes it back on the day it was refunded, so a
closed day's figures stay as they were. Margin is revenue less spend.
"""

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from itertools import chain, islice

from django.conf import settings
from django.db.models import Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts import days as calendar
from accounts.models import Payment, TelegramUser
from botcore import summaries
from botcore.summaries import SPEND_UNIT, created_on

from .reports import figures_of
from .templatetags.figures import usd

ZERO = Decimal("0.0000")
TOP_USERS = 50
SHOWN = ("delivered", "failed", "cache_hits", "spend")  # of figures_of's figures, those a cost table shows
DAILY = ("delivered", "failed", "spend", "stars", "revenue", "margin")  # a row of the table by day (or week)


@dataclass
class CostReport:
    """The cost report of the days from `first` to `last`. A table is worked out when first read,
    and kept: each renderer reads the tables it shows, none is worked out twice, and the CSV export
    of one table runs that table's queries only."""

    first: date
    last: date

    @cached_property
    def rows(self):
        return summaries.rows(self.first, self.last)

    @cached_property
    def days(self):
        return by_day(self.rows, self.first, self.last, revenue_by_day(self.first, self.last))

    @cached_property
    def weeks(self):
        return by_week(self.days)

    @cached_property
    def totals(self):
        figures = figures_of(self.rows)
        totals = {key: figures[key] for key in ("delivered", "failed", "spend")}
        stars = sum(row["stars"] for row in self.days)
        return {**totals, **_money(stars, totals["spend"])}

    @cached_property
    def tiers(self):
        return by_tier(self.rows)

    @cached_property
    def models(self):
        return by_model(self.rows)

    @cached_property
    def users(self):
        return by_user(self.first, self.last, TOP_USERS)

    @cached_property
    def all_users(self):
        return by_user(self.first, self.last, limit=None)


def by_day(rows, first, last, stars=None):
    """One row per day from `first` to `last`, days without generations included, with the revenue of
    `stars` ({day: Stars paid less Stars refunded})."""
    found = _added_up(rows, lambda row: row.day)
    stars = stars or {}
    empty = {"delivered": 0, "failed": 0, "spend": ZERO}
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    rows = [{"day": day, **{key: found.get(day, empty)[key] for key in empty}} for day in days]
    return [{**row, **_money(stars.get(row["day"], 0), row["spend"])} for row in rows]


def by_week(days):
    """The rows of by_day added up per week, Monday to Sunday, each cut to the range: `day` its first day
    in the range, `last` its last."""
    weeks = {}
    for row in days:
        monday = row["day"] - timedelta(row["day"].weekday())
        week = weeks.setdefault(monday, {"day": row["day"], **{key: 0 for key in DAILY}})
        week["last"] = row["day"]
        for key in DAILY:
            week[key] += row[key]
    return list(weeks.values())


def stars_usd(stars):
    """What `stars` Telegram Stars bring in, in USD: an estimate at STARS_USD_RATE."""
    return stars * settings.STARS_USD_RATE


def _money(stars, spend):
    revenue = stars_usd(stars)
    return {"stars": stars, "revenue": revenue, "margin": revenue - spend}


def revenue_by_day(first, last):
    """Stars paid less Stars refunded on each day from `first` to `last` that had either: {day: Stars}.

    One query: payments paid or refunded in the range, added up per pair of days (paid, refunded)."""
    start, end = calendar.bounds(first, last)
    zone = timezone.get_default_timezone()
    pairs = (
        Payment.objects.filter(Q(paid_at__gte=start, paid_at__lt=end) | Q(refunded_at__gte=start, refunded_at__lt=end))
        .order_by()
        .values_list(TruncDate("paid_at", tzinfo=zone), TruncDate("refunded_at", tzinfo=zone))
        .annotate(stars=Sum("stars"))
    )
    stars = defaultdict(int)
    for paid, refunded, amount in pairs:
        if first <= paid <= last:
            stars[paid] += amount
        if refunded is not None and first <= refunded <= last:
            stars[refunded] -= amount
    return dict(stars)


def by_tier(rows):
    """Tiers by spend, each generation counted in the tier its user was on when they asked."""
    found = [{**figures, "tier": tier} for tier, figures in _added_up(rows, lambda row: row.tier).items()]
    return sorted(found, key=lambda row: (-row["spend"], row["tier"]))


def by_user(first, last, limit=TOP_USERS):
    """Users by spend, the top `limit` (None: all of them), with who they are and their tier.

    The closed days' figures come ranked from summaries.user_totals: besides the users who also
    have open days, only the first `limit` of the others can make the top."""
    closed, open_from = summaries.user_totals(first, last)
    live = {user_id: figures for user_id, *figures in summaries.per_user(created_on(open_from, last))}
    others = (row for row in closed.ranked() if row[0] not in live)
    candidates = chain(closed.plus(live), others if limit is None else islice(others, limit))
    # (spend, delivered, -user_id, failed) sorts best first in reverse: most spent, then most images.
    ranked = [(spend, delivered, -user_id, failed) for user_id, delivered, failed, spend in candidates]
    ranked = sorted(ranked, reverse=True) if limit is None else heapq.nlargest(limit, ranked)

    users = TelegramUser.objects.select_related("tier").only("telegram_id", "username", "first_name", "tier__name")
    if limit is None:
        users = users.filter(pk__in=created_on(first, last).values("user_id"))
    else:
        users = users.filter(pk__in=[-row[2] for row in ranked])
    users = {user.pk: user for user in users}
    return [
        {
            "user": users[-negative_id],
            "name": str(users[-negative_id]),
            "delivered": delivered,
            "failed": failed,
            "spend": spend * SPEND_UNIT,
        }
        for spend, delivered, negative_id, failed in ranked
        if -negative_id in users  # not a user deleted since their days were summed up
    ]


def by_model(rows):
    """Model and resolution pairs, with cache hits and the average cost of a delivered image."""
    found = _added_up(rows, lambda row: (row.model, row.resolution))
    found = [{**figures, "model": model, "resolution": size} for (model, size), figures in sorted(found.items())]
    return [{**row, "per_image": row["spend"] / row["delivered"] if row["delivered"] else None} for row in found]


def _added_up(rows, key):
    """The figures a cost table shows of DaySummary rows, added up per key(row)."""
    groups = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return {value: _shown(figures_of(group)) for value, group in groups.items()}


def _shown(figures):
    return {key: figures[key] for key in SHOWN}


# Charts: inline SVG drawn here, one point or bar per day. The SVG is as wide as the page and a fixed
# height, in CSS pixels: its text keeps its size on a phone instead of shrinking with the drawing. The
# data are drawn in a nested SVG stretched to the width (a unit per day across, a pixel per unit down);
# labels and markers sit in the outer one, across in percent of the width, down in pixels.

HEIGHT = 184
TOP, PLOT_HEIGHT = 18, 140  # above the plot: the top tick's label
BOTTOM = TOP + PLOT_HEIGHT
DATE_Y = HEIGHT - 6
MOST_DATES = 5  # labels across: five "Mar 30"s fit the 300 px a chart has on a 390 px phone
DATE_STEPS = (1, 2, 3, 7, 14, 21, 28, 42, 56, 91)  # days between two labels
MARKED_DAYS = 31  # a line chart marks each day's point up to a month; past that the marks merge
CENT = Decimal("0.01")


def _coordinate(value):
    return f"{value:.1f}"  # a string, so localized number formatting never reaches the SVG


def _count(value):
    return f"{value:,}"


def _scale(largest, money):
    """Round tick values from 0 to at least `largest`, 3 to 5 of them (for counts below 2, fewer): steps
    of 1, 2, 2.5 or 5 times a power of ten, whole numbers for counts and whole cents for money."""
    largest = Decimal(largest) if largest > 0 else Decimal(1)
    wanted = max(largest / 4, CENT if money else Decimal(1))
    magnitude = Decimal(10) ** wanted.adjusted()
    for multiple in (1, 2, Decimal("2.5"), 5, 10):
        step = multiple * magnitude
        whole = step == step.quantize(CENT) if money else step == step.to_integral_value()
        if whole and step >= wanted:
            break
    return [step * n for n in range(max(2, math.ceil(largest / step)) + 1)]


def _tick_label(value, money, whole):
    if not money:
        return _count(int(value))
    return f"${value:,.0f}" if whole else f"${value:,.2f}"


def _dates(count):
    """The days labelled on the x axis (their indexes): at most MOST_DATES, evenly spaced."""
    step = next((step for step in DATE_STEPS if math.ceil(count / step) <= MOST_DATES), DATE_STEPS[-1])
    return range(0, count, step)


def _across(n, count):
    """Where day `n`'s slot is centred, in percent of the chart's width."""
    return (n + 0.5) / count * 100


def _chart(days, key, money, budget=None):
    """What every chart has: the values, their scale, the axes, and what it says in words."""
    values = [row[key] for row in days]
    shares = [budget(row["day"]) for row in days] if budget else []
    ticks = _scale(max([*values, *[share for share in shares if share]], default=0), money)
    top = float(ticks[-1])
    whole = all(tick == tick.to_integral_value() for tick in ticks)
    shown = usd if money else _count

    def down(value):  # pixels from the plot's top
        return PLOT_HEIGHT * (1 - float(value) / top)

    dates = []
    for n in _dates(len(days)):
        across = _across(n, len(days))
        # Centred, but kept within the chart at its edges (a few pixels over is in the figure's margin).
        anchor = "start" if across < 4 else "end" if across > 96 else "middle"
        dates.append({"x": f"{across:.1f}%", "anchor": anchor, "day": days[n]["day"]})
    peak = max(range(len(days)), key=lambda n: values[n], default=None)
    peak = peak if peak is not None and values[peak] else None
    chart = {
        "height": HEIGHT,
        "top": TOP,
        "bottom": BOTTOM,
        "date_y": DATE_Y,
        "tick_end": BOTTOM + 4,
        "plot_height": PLOT_HEIGHT,
        "slots": len(days),
        "y_ticks": [
            {
                "y": _coordinate(TOP + down(tick)),
                "label_y": _coordinate(TOP + down(tick) - 4),
                "label": _tick_label(tick, money, whole),
            }
            for tick in ticks
        ],
        "x_ticks": dates,
        "days": [{"day": row["day"], "value": row[key], "text": shown(row[key])} for row in days],
        "first": days[0]["day"] if days else None,
        "last": days[-1]["day"] if days else None,
        "total": shown(sum(values, Decimal(0) if money else 0)),
        "peak": {"day": days[peak]["day"], "text": shown(values[peak])} if peak is not None else None,
        "budget": None,
    }
    if shares and shares[0] is not None:  # daily_share gives None for every day, or for none: no budget set
        # A step where a month starts: a day of February has a larger share than one of March.
        steps = [(0, down(shares[0]))]
        for n in range(1, len(shares)):
            if shares[n] != shares[n - 1]:
                steps += [(n, steps[-1][1]), (n, down(shares[n]))]
        steps.append((len(shares), steps[-1][1]))
        chart["budget"] = {
            "polyline": " ".join(f"{x},{_coordinate(y)}" for x, y in steps),
            "label_y": _coordinate(TOP + steps[-1][1] - 6),
            "text": usd(shares[-1]),
        }
    return chart, down


def line_chart(days, key, money=False, budget=None):
    """A line through a point per day, each day's point marked up to a month. `budget(day)`: a
    money chart's budget line (budget.daily_share), drawn where the day's share is when a budget is set."""
    chart, down = _chart(days, key, money, budget)
    ys = [down(row["value"]) for row in chart["days"]]
    chart["polyline"] = " ".join(f"{n + 0.5},{_coordinate(y)}" for n, y in enumerate(ys))
    if len(days) <= MARKED_DAYS:
        chart["points"] = [{"x": f"{_across(n, len(days)):.1f}%", "y": _coordinate(TOP + y)} for n, y in enumerate(ys)]
    return chart


def bar_chart(days, key, money=False):
    """A bar per day."""
    chart, down = _chart(days, key, money)
    chart["bars"] = [
        {
            "x": _coordinate(n + 0.15),
            "width": "0.7",
            "y": _coordinate(down(row["value"])),
            "height": _coordinate(PLOT_HEIGHT - down(row["value"])),
            "day": row["day"],
            "text": row["text"],
        }
        for n, row in enumerate(chart["days"])
    ]
    return chart
