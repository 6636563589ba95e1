"""MONTHLY_BUDGET_USD, and the share of it a day has: the month's budget over the month's days, so a
day of February has a larger share than a day of March."""

import calendar
from datetime import date
from decimal import Decimal

from django.conf import settings


def monthly() -> Decimal | None:
    return settings.MONTHLY_BUDGET_USD


def daily_share(day: date) -> Decimal | None:
    """The budget of `day`'s month spread evenly over its days; None without a budget."""
    budget = monthly()
    return budget / calendar.monthrange(day.year, day.month)[1] if budget else None
