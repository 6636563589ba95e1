"""The JSON API's reports: today's figures, and the cost report with revenue and margin (the dashboard's,
costreports.py) for the same range parameters (ranges.py)."""

from datetime import date
from typing import Literal

from ninja import Field, Query, Router, Schema
from ninja.errors import ValidationError

from accounts import days
from accounts.models import TelegramUser

from . import reports
from .costreports import CostReport
from .ranges import DEFAULT_DAYS, MAX_DAYS, PRESETS, period

router = Router(tags=["costs"])


class StatsOut(Schema):
    day: str
    delivered: int
    failed: int
    refused: int
    in_progress: int
    spend: float
    users: int
    new_users: int


# The operation id it had in accounts' router: clients generated from the schema keep working.
@router.get("/stats", response=StatsOut, tags=["stats"], summary="Today's figures", operation_id="accounts_api_stats")
def stats(request):
    """Today's generations by status and spend (USD), in TIME_ZONE's quota day, and user counts."""
    start = days.start_of(days.today())
    return {
        **reports.today(),
        "day": start.date().isoformat(),
        "users": TelegramUser.objects.count(),
        "new_users": TelegramUser.objects.filter(created_at__gte=start).count(),
    }


class CheckOut(Schema):
    name: str = Field(description="What is checked, in the language asked for (Accept-Language).")
    level: Literal["ok", "warn", "bad", "info"] = Field(description="bad: a person is needed now.")
    summary: str
    advice: str = Field(description="What to do about it; empty when all is well.")
    details: list[str]


@router.get("/status", response=list[CheckOut], tags=["stats"], summary="The overview's status panel")
def status(request):
    """Whether the bot, its workers and beat run (by their heartbeats), stuck or waiting jobs, the providers'
    circuit breakers and spend against the budget: the same checks as the dashboard's overview."""
    return reports.status_now()


class Figures(Schema):
    delivered: int = Field(description="Images delivered.")
    failed: int
    spend: float = Field(description="USD.")


class Revenue(Schema):
    stars: int = Field(description="Telegram Stars paid less those refunded, each on the day it happened.")
    revenue: float = Field(description="USD, estimated: the Stars at STARS_USD_RATE.")
    margin: float = Field(description="USD: revenue less spend.")


class CostDay(Figures, Revenue):
    day: date


class CostTier(Figures):
    tier: str = Field(description="The tier the users were on when they asked.")


class CostModel(Figures):
    model: str
    resolution: str
    cache_hits: int = Field(description="Images answered from the result cache, free.")
    per_image: float | None = Field(description="USD per image delivered.")


class CostUser(Figures):
    telegram_id: int
    username: str
    tier: str = Field(description="Their tier now.")

    @staticmethod
    def resolve_telegram_id(row):
        return row["user"].telegram_id

    @staticmethod
    def resolve_username(row):
        return row["user"].username

    @staticmethod
    def resolve_tier(row):
        return row["user"].tier.name


class CostsOut(Figures, Revenue):
    first: date
    last: date
    days: list[CostDay] = Field(description="Every day of the range, days without generations included.")
    tiers: list[CostTier]
    models: list[CostModel] = Field(description="By model and resolution.")
    users: list[CostUser] = Field(description="The 50 users who spent most.")


class PeriodIn(Schema):
    range: Literal[(*PRESETS, "custom")] | None = Field(  # type: ignore[valid-type]
        None,
        description=f"The last {' or '.join(PRESETS)} days, today included (the default: {DEFAULT_DAYS}), "
        "or `from` to `to`.",
    )
    first: date | None = Field(None, alias="from", description="First day of a custom range (TIME_ZONE).")
    last: date | None = Field(
        None, alias="to", description=f"Last day, included; at most {MAX_DAYS} days after `from`."
    )


@router.get("/costs", response=CostsOut, summary="Cost report")
def costs(request, params: Query[PeriodIn]):
    """Spend and images by day, tier, model and resolution, and the top users; revenue and margin in all and
    by day: the dashboard's cost report."""
    first, last, form = period(params.dict(by_alias=True, exclude_none=True))
    if form.errors:
        raise ValidationError(
            [
                {"type": "value_error", "loc": ["query", field if field != "__all__" else "from"], "msg": str(error)}
                for field, errors in form.errors.items()
                for error in errors
            ]
        )
    report = CostReport(first, last)
    return {
        **report.totals,
        "first": first,
        "last": last,
        "days": report.days,
        "tiers": report.tiers,
        "models": report.models,
        "users": report.users,
    }
