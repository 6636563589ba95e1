"""How a figure reads on a page: money to the cent, a share as a whole percent, a latency in whole
seconds, a moment in TIME_ZONE with the zone's name."""

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django import template
from django.utils import timezone

register = template.Library()

CENT = Decimal("0.01")


@register.filter
def usd(amount):
    """Decimal("0.1340") -> "$0.13"; no amount -> "–". Grouped thousands: "$12,345.60"; a loss (a margin
    below zero): "-$0.13"."""
    if amount is None or amount == "":
        return "–"
    amount = Decimal(amount).quantize(CENT, ROUND_HALF_UP)
    return f"-${-amount:,}" if amount < 0 else f"${amount:,}"


@register.filter
def percent(share):
    """0.423 -> "42%"; no share (nothing finished, no budget) -> "–"."""
    return "–" if share is None else f"{round(share * 100)}%"


@register.filter
def seconds(milliseconds):
    """A latency bucket's upper bound in ms -> "≤ 3 s"; no figure -> "–"."""
    return f"≤ {round(milliseconds / 1000)} s" if milliseconds else "–"


@register.filter
def when(moment: datetime | None) -> str:
    """An aware datetime in TIME_ZONE, to the minute, with the zone: "2026-12-03 15:24 CST"."""
    if moment is None:
        return "–"
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M} {zone_name(local)}"


def zone_name(local: datetime) -> str:
    # Some zones have no abbreviation and give an offset ("+08"), which reads better as "UTC+08".
    name = local.tzname() or ""
    return name if name[:1].isalpha() else f"UTC{name}"
