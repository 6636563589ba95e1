"""Spend and images over a range of days in TIME_ZONE: by day, tier, user, model and resolution.

Each table is one GROUP BY query over a created_at range (the top users: one more to name them);
days without generations are filled in here, and the charts' coordinates computed, so templates only loop.
"""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import TelegramUser
from botcore.models import Generation

ZERO = Decimal("0.0000")
Status = Generation.Status


def day_start(day):
    """The moment `day` begins in TIME_ZONE."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def in_range(first, last):
    """Generations created from the start of `first` to the end of `last`, both days included."""
    return Generation.objects.filter(created_at__gte=day_start(first), created_at__lt=day_start(last + timedelta(1)))


def _figures():
    return {
        "delivered": Count("pk", filter=Q(status=Status.DELIVERED)),
        "failed": Count("pk", filter=Q(status=Status.FAILED)),
        "spend": Sum("cost_usd", default=ZERO, output_field=DecimalField(max_digits=16, decimal_places=4)),
    }


def by_day(first, last):
    """One row per day from `first` to `last`, days without generations included."""
    rows = (
        in_range(first, last)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .values("day")
        .annotate(**_figures())
        .order_by()  # no ORDER BY in SQL: PostgreSQL can then hash the groups instead of sorting every row
    )
    found = {row["day"]: row for row in rows}
    empty = {"delivered": 0, "failed": 0, "spend": ZERO}
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    return [{**found.get(day, empty), "day": day} for day in days]


def totals(days):
    return {key: sum(row[key] for row in days) for key in ("delivered", "failed", "spend")}


def by_tier(first, last):
    """Tiers by spend; a user counts under the tier they are on now."""
    rows = in_range(first, last).values("user__tier_id", "user__tier__name").annotate(**_figures()).order_by()
    return sorted(rows, key=lambda row: (-row["spend"], row["user__tier__name"]))


def by_user(first, last, limit=50):
    """Users by spend, the top `limit` (None: all of them), with who they are and their tier.

    Grouping by the user id alone keeps the GROUP BY narrow; the users are fetched afterwards."""
    figures = in_range(first, last).values("user_id").annotate(**_figures()).order_by("-spend", "-delivered", "user_id")
    rows = list(figures if limit is None else figures[:limit])
    users = TelegramUser.objects.select_related("tier").only("telegram_id", "username", "first_name", "tier__name")
    if limit is None:
        users = users.filter(pk__in=in_range(first, last).values("user_id"))
    else:
        users = users.filter(pk__in=[row["user_id"] for row in rows])
    users = {user.pk: user for user in users}
    return [{**row, "user": users[row["user_id"]], "name": str(users[row["user_id"]])} for row in rows]


def by_model(first, last):
    """Model and resolution pairs, with cache hits and the average cost of a delivered image."""
    rows = in_range(first, last).values("model", "resolution")
    rows = rows.annotate(cache_hits=Count("pk", filter=Q(cache_hit=True)), **_figures()).order_by()
    rows = sorted(rows, key=lambda row: (row["model"], row["resolution"]))
    return [{**row, "per_image": row["spend"] / row["delivered"] if row["delivered"] else None} for row in rows]


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
