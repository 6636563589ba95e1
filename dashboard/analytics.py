"""The analytics page: who uses the bot and how well it serves them, over the last 30 or 90 days.

Active users come from botcore/activity.py: a user is active on a day they asked for at least one
image (any generation, whatever came of it), and new in a period when their first request ever falls
in it (not when they first wrote to the bot: TelegramUser.created_at counts those who never asked).
Success rate, latency, refusals and cost per model and resolution fold the period's DaySummary rows
with reports.figures_of and costreports.by_model, as the overview and the cost report do."""

from collections import Counter, defaultdict
from datetime import timedelta

from django.conf import settings
from django.shortcuts import render
from django.urls import path

from accounts import days
from botcore import summaries
from botcore.activity import Activity
from botcore.models import Generation

from . import costreports
from .access import staff_required
from .reports import figures_of

PERIODS = {"30": 30, "90": 90}
DEFAULT_PERIOD = "30"
COHORT_WEEKS = 8
WEEK, MONTH = 7, 30  # the days "active over a week" and "over a month" count, today's included
QUALITY = ("refused", "success_rate", "p50_ms", "p95_ms")  # of figures_of's, those the model table adds


def analytics(period):
    """Everything the page shows for the last `period` (a key of PERIODS) days, today's included."""
    today = days.today()
    first = today - timedelta(days=PERIODS[period] - 1)
    activity = Activity(since=min(first, today - timedelta(days=MONTH - 1)))
    users = active_users(activity, first)
    rows = summaries.rows(first, today)
    return {
        "period": period,
        "first": first,
        "last": today,
        "zone": settings.TIME_ZONE,
        "users": users,
        "users_chart": costreports.bar_chart(users["days"], "active"),
        "cohorts": cohorts(activity, COHORT_WEEKS),
        "weeks_after": range(1, COHORT_WEEKS),
        "figures": figures_of(rows),
        "refusals": refusals(rows),
        "models": by_model(rows),
    }


def active_users(activity, first):
    """Active users today and over the last 7 and 30 days; active, new and returning ones from `first`
    on, in all and per day."""
    today = activity.today
    (week, _), (month, _) = (
        activity.users_since(today - timedelta(WEEK - 1)),
        activity.users_since(today - timedelta(MONTH - 1)),
    )
    active, new = activity.users_since(first)
    per_day = [
        {"day": day, "active": active_that_day, "new": new_that_day, "returning": active_that_day - new_that_day}
        for day, active_that_day, new_that_day in activity.by_day()
        if day >= first
    ]
    return {
        "today": per_day[-1]["active"],
        "week": week,
        "month": month,
        "active": active,
        "new": new,
        "returning": active - new,
        "days": per_day,
    }


def cohorts(activity, count):
    """The last `count` weekly cohorts, oldest first: their size, and the share of them active in each
    following week so far (None where nobody joined that week; no cell for weeks still to come)."""
    found = []
    for week, active in activity.cohorts(count):
        size, later = active[0], active[1:]
        shares = [{"share": users / size if size else None} for users in later]
        found.append({"week": week, "users": size, "cells": shares + [None] * (count - 1 - len(later))})
    return found


def refusals(rows):
    """Refused requests by kind, most first, from DaySummary rows."""
    kinds = Counter()
    for row in rows:
        if row.status == Generation.Status.REFUSED:
            kinds[row.error_code] += row.images
    return [{"error_code": code, "count": count} for code, count in kinds.most_common()]


def by_model(rows):
    """The cost report's model and resolution table (costreports.by_model), with each pair's refusals,
    success rate and latency percentiles."""
    groups = defaultdict(list)
    for row in rows:
        groups[row.model, row.resolution].append(row)
    quality = {key: figures_of(group) for key, group in groups.items()}
    return [
        {**row, **{key: quality[row["model"], row["resolution"]][key] for key in QUALITY}}
        for row in costreports.by_model(rows)
    ]


@staff_required
def page(request):
    period = request.GET.get("range")
    return render(request, "dashboard/analytics.html", analytics(period if period in PERIODS else DEFAULT_PERIOD))


urlpatterns = [path("analytics/", page, name="analytics")]
