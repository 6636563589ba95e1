"""Spend and images over a range of days in TIME_ZONE: by day, tier, user, model and resolution.

A CostReport is the one report that the page, its CSV exports and the JSON API render. Its tables by
day, tier and model add up the range's DaySummary rows (summaries.rows: kept for the closed days, summed
up on the fly for the open ones) with reports.figures_of, as the overview does; the top users add the
open days' generations to per-user totals of the closed days (kept in the cache), and one more query
names them. Days without generations are filled in here, and the charts' coordinates computed, so
templates only loop.
"""

import heapq
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from itertools import chain, islice

from accounts.models import TelegramUser
from botcore import summaries
from botcore.summaries import SPEND_UNIT, created_on

from .reports import figures_of

ZERO = Decimal("0.0000")
TOP_USERS = 50
SHOWN = ("delivered", "failed", "cache_hits", "spend")  # of figures_of's figures, those a cost table shows


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
        return by_day(self.rows, self.first, self.last)

    @cached_property
    def totals(self):
        figures = figures_of(self.rows)
        return {key: figures[key] for key in ("delivered", "failed", "spend")}

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


def by_day(rows, first, last):
    """One row per day from `first` to `last`, days without generations included."""
    found = _added_up(rows, lambda row: row.day)
    empty = {"delivered": 0, "failed": 0, "spend": ZERO}
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    return [{"day": day, **{key: found.get(day, empty)[key] for key in empty}} for day in days]


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


# Charts: inline SVG, one point or bar per day.

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 8, 8, 12, 8
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _coordinate(value):
    return f"{value:.1f}"  # a string, so localized number formatting never reaches the SVG


def _frame(days, key):
    values = [row[key] for row in days]
    top = max(values, default=0)
    return values, top, float(top) or 1.0


def line_chart(days, key):
    """A polyline with a point per day; `top` is the largest value, at the chart's top edge."""
    values, top, scale = _frame(days, key)
    step = PLOT_WIDTH / (len(days) - 1) if len(days) > 1 else 0
    points = []
    for n, (row, value) in enumerate(zip(days, values, strict=True)):
        x = LEFT + (n * step if len(days) > 1 else PLOT_WIDTH / 2)
        y = TOP + PLOT_HEIGHT * (1 - float(value) / scale)
        points.append({"x": _coordinate(x), "y": _coordinate(y), "day": row["day"], "value": value})
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "baseline": _coordinate(TOP + PLOT_HEIGHT),
        "top": top,
        "points": points,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
    }


def bar_chart(days, key):
    """A bar per day; `top` is the largest value, at the chart's top edge."""
    values, top, scale = _frame(days, key)
    slot = PLOT_WIDTH / max(len(days), 1)
    bars = []
    for n, (row, value) in enumerate(zip(days, values, strict=True)):
        height = PLOT_HEIGHT * float(value) / scale
        bars.append(
            {
                "x": _coordinate(LEFT + n * slot + slot * 0.1),
                "y": _coordinate(TOP + PLOT_HEIGHT - height),
                "width": _coordinate(slot * 0.8),
                "height": _coordinate(height),
                "day": row["day"],
                "value": value,
            }
        )
    return {"width": WIDTH, "height": HEIGHT, "baseline": _coordinate(TOP + PLOT_HEIGHT), "top": top, "bars": bars}
