"""The spend budget: optional limits on what the image providers cost, per day and per month in TIME_ZONE
(DAILY_BUDGET_USD, MONTHLY_BUDGET_USD).

Checked before each paid call, with the calls already in flight counted at their estimated price: every
job is marked running before it checks, so of two jobs checking at once each counts the other, and the
logged cost can pass a limit by no more than what the running jobs cost beyond their estimates. Cache
hits cost nothing and are never held back.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Sum

from accounts import days

from . import generations, summaries
from .models import Generation
from .providers import registry


@dataclass(frozen=True)
class Limit:
    period: str  # "day" or "month"
    amount: Decimal  # USD
    first_day: date  # the period's first day, in TIME_ZONE


@dataclass(frozen=True)
class Reached:
    """A limit that the next call would pass: what has been spent and what is in flight."""

    limit: Limit
    spent: Decimal
    in_flight: Decimal


def limits(today: date) -> list[Limit]:
    found = []
    if settings.DAILY_BUDGET_USD:
        found.append(Limit("day", settings.DAILY_BUDGET_USD, today))
    if settings.MONTHLY_BUDGET_USD:
        found.append(Limit("month", settings.MONTHLY_BUDGET_USD, today.replace(day=1)))
    return found


def estimate(resolution: str) -> Decimal:
    """What one image at `resolution` may cost: the dearest of the providers a call may reach."""
    return max(generations.price(each.name, each.model, resolution) for each in registry.configured(None))


def reached(batch: list[Generation]) -> Reached | None:
    """The first limit that making `batch` (running generations) would pass, or None to go ahead."""
    today = days.today()
    found = limits(today)
    if not found:
        return None
    others = (
        Generation.objects.filter(status=Generation.Status.RUNNING)
        .exclude(pk__in=[generation.pk for generation in batch])
        .values_list("resolution")
        .annotate(count=Count("pk"))
        .order_by()
    )
    in_flight = sum((estimate(resolution) * count for resolution, count in others), Decimal(0))
    asked = sum((estimate(generation.resolution) for generation in batch), Decimal(0))
    for limit in found:
        spent = spent_since(limit.first_day, today)
        if spent >= limit.amount or spent + in_flight + asked > limit.amount:
            return Reached(limit, spent, in_flight)
    return None


def spent_since(first: date, today: date) -> Decimal:
    """What the image calls from day `first` to today cost: two sums, as this runs before every paid call."""
    summed, open_from = summaries.closed(first, today)
    closed = summed.aggregate(spend=Sum("spend"))["spend"] or Decimal(0)
    live = summaries.created_on(open_from, today).aggregate(spend=Sum("cost_usd"))["spend"] or Decimal(0)
    return closed + live
