"""The budgets the dashboard draws and weighs spend against: MONTHLY_BUDGET_USD, and a day's budget, which is
DAILY_BUDGET_USD when set (a limit, as botcore/spending.py enforces it), else the day's share of the month's
(the month's budget over its days, so a day of February has a larger share than a day of March)."""

import calendar
from datetime import date
from decimal import Decimal

from django.conf import settings


def monthly() -> Decimal | None:
    return settings.MONTHLY_BUDGET_USD


def daily_share(day: date) -> Decimal | None:
    """The budget of `day`; None without a budget."""
    if settings.DAILY_BUDGET_USD:
        return settings.DAILY_BUDGET_USD
    budget = monthly()
    return budget / calendar.monthrange(day.year, day.month)[1] if budget else None
