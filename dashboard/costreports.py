"""Spend and images over a range of days in TIME_ZONE: by day, tier, user, model and resolution.

Closed days come from their summaries (summaries.py), the open days from one GROUP BY over their
generations; the top users from per-user totals of the closed days (kept in the cache) plus the
open days' generations, and one more query to name them.
Days without generations are filled in here, and the charts' coordinates computed, so templates only loop.
"""

from datetime import timedelta
from decimal import Decimal
from itertools import islice

from django.db.models import Count, DecimalField, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import TelegramUser
from botcore.models import Generation

from . import summaries
from .summaries import SPEND_UNIT, created_on

ZERO = Decimal("0.0000")
Status = Generation.Status


def _figures():
    return {
        "delivered": Count("pk", filter=Q(status=Status.DELIVERED)),
        "failed": Count("pk", filter=Q(status=Status.FAILED)),
        "spend": Sum("cost_usd", default=ZERO, output_field=DecimalField(max_digits=16, decimal_places=4)),
    }


def by_day(first, last):
    """One row per day from `first` to `last`, days without generations included."""
    summed, open_from = summaries.closed(first, last)
    found = _sum_summaries(summed, lambda row: row.day)
    live = (
        created_on(open_from, last)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .values("day")
        .annotate(**_figures())
        .order_by()  # no ORDER BY in SQL: PostgreSQL can then hash the groups instead of sorting every row
    )
    found.update({row["day"]: row for row in live})
    empty = {"delivered": 0, "failed": 0, "spend": ZERO}
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    return [{**found.get(day, empty), "day": day} for day in days]


def totals(days):
    return {key: sum(row[key] for row in days) for key in ("delivered", "failed", "spend")}


def by_tier(first, last):
    """Tiers by spend, each generation counted in the tier its user was on when they asked."""
    summed, open_from = summaries.closed(first, last)
    found = _sum_summaries(summed, lambda row: row.tier)
    for row in created_on(open_from, last).values("tier").annotate(**_figures()).order_by():
        _add(found.setdefault(row["tier"], _empty()), row)
    rows = [{**figures, "tier": tier} for tier, figures in found.items()]
    return sorted(rows, key=lambda row: (-row["spend"], row["tier"]))


def by_user(first, last, limit=50):
    """Users by spend, the top `limit` (None: all of them), with who they are and their tier.

    The closed days' figures come ranked from summaries.user_totals: besides the users who also
    have open days, only the first `limit` of the others can make the top."""
    closed, open_from = summaries.user_totals(first, last)
    live = {
        user_id: (delivered, failed, int(spend / SPEND_UNIT))
        for user_id, delivered, failed, spend in created_on(open_from, last)
        .values_list("user_id")
        .annotate(**_figures())
        .order_by()
    }
    ranked = []  # (spend, delivered, -user_id, failed): best first once sorted in reverse
    for user_id, (delivered, failed, spend) in live.items():
        before = closed.of(user_id)
        ranked.append((spend + before[2], delivered + before[0], -user_id, failed + before[1]))
    others = (row for row in closed.ranked() if row[0] not in live)
    for user_id, delivered, failed, spend in others if limit is None else islice(others, limit):
        ranked.append((spend, delivered, -user_id, failed))
    ranked = sorted(ranked, reverse=True)[:limit]

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


def by_model(first, last):
    """Model and resolution pairs, with cache hits and the average cost of a delivered image."""
    summed, open_from = summaries.closed(first, last)
    found = _sum_summaries(summed, lambda row: (row.model, row.resolution))
    live = created_on(open_from, last).values("model", "resolution")
    for row in live.annotate(cache_hits=Count("pk", filter=Q(cache_hit=True)), **_figures()).order_by():
        _add(found.setdefault((row["model"], row["resolution"]), _empty()), row)
    rows = [{**figures, "model": model, "resolution": size} for (model, size), figures in sorted(found.items())]
    return [{**row, "per_image": row["spend"] / row["delivered"] if row["delivered"] else None} for row in rows]


def _empty():
    return {"delivered": 0, "failed": 0, "spend": ZERO, "cache_hits": 0}


def _add(figures, row):
    for key in figures:
        figures[key] += row.get(key, 0)


def _sum_summaries(summed, key):
    """The figures of DaySummary rows, summed per key(row)."""
    found = {}
    for row in summed:
        figures = found.setdefault(key(row), _empty())
        figures["delivered"] += row.images if row.status == Status.DELIVERED else 0
        figures["failed"] += row.images if row.status == Status.FAILED else 0
        figures["cache_hits"] += row.images if row.cache_hit else 0
        figures["spend"] += row.spend
    return found


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
