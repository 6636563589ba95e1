"""Read-only aggregations for the overview page and the API's stats."""

from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils import timezone

from accounts import days
from botcore import spending, summaries
from botcore.models import Generation
from botcore.summaries import LATENCY_BUCKETS_MS

from . import status


def today():
    """Today's figures (figures_of): the day is still open, so they are summed from its generations."""
    day = days.today()
    return figures_of(summaries.rows(day, day))


def figures_of(rows):
    """Images by outcome (and in progress), spend, success rate, latency percentiles and failures by
    kind, folded from DaySummary rows (summaries.rows)."""
    Status = Generation.Status
    figures = {"delivered": 0, "failed": 0, "refused": 0, "in_progress": 0, "cache_hits": 0, "spend": Decimal(0)}
    latencies = []  # each delivered row's buckets, added up column by column once all are read
    failures = Counter()
    for row in rows:
        status, images = row.status, row.images
        figures["in_progress" if status in Generation.OPEN else status] += images  # else: an outcome
        figures["cache_hits"] += images if row.cache_hit else 0
        figures["spend"] += row.spend
        if status == Status.DELIVERED:
            latencies.append(row.latency_buckets)
        elif status == Status.FAILED:
            failures[row.error_code] += images
    counts = [sum(column) for column in zip(*latencies, strict=True)] or [0] * len(LATENCY_BUCKETS_MS)
    finished = figures["delivered"] + figures["failed"]
    figures["success_rate"] = figures["delivered"] / finished if finished else None
    figures["p50_ms"] = _percentile(0.50, figures["delivered"], counts)
    figures["p95_ms"] = _percentile(0.95, figures["delivered"], counts)
    figures["failures"] = [{"error_code": code, "count": count} for code, count in failures.most_common()]
    return figures


def _percentile(share, total, cumulative_counts):
    if not total:
        return None
    for edge, count in zip(LATENCY_BUCKETS_MS, cumulative_counts, strict=True):
        if count >= share * total:
            return edge
    return None  # beyond the last bucket: slower than anything we name


CHART_DAYS = 30  # the overview's spend chart


def overview(now=None):
    """Today's and this month's figures, the status panel, spend per day over the last CHART_DAYS days,
    the newest failures and today's top users: the DaySummary rows are read once, for the month and the chart."""
    now = now or timezone.now()
    today = days.today(now)
    month_start, chart_start = today.replace(day=1), today - timedelta(CHART_DAYS - 1)
    rows = summaries.rows(min(month_start, chart_start), today)  # today's are among them
    figures = {
        "today": figures_of([row for row in rows if row.day == today]),
        "month": figures_of([row for row in rows if row.day >= month_start]),
    }
    spend = defaultdict(Decimal)
    for row in rows:
        spend[row.day] += row.spend
    return {
        **figures,
        "status": status.checks(figures["today"]["spend"], figures["month"]["spend"], now),
        "spend_days": [{"day": day, "spend": spend[day]} for day in _days_from(chart_start, CHART_DAYS)],
        "errors": Generation.objects.filter(status=Generation.Status.FAILED).select_related("user")[:10],
        "top_users": list(
            Generation.objects.filter(created_at__gte=days.start_of(today), status=Generation.Status.DELIVERED)
            .values("user_id", "user__telegram_id", "user__username", "user__first_name")
            .annotate(images=Count("pk"), spend=Sum("cost_usd"))
            .order_by("-images")[:10]
        ),
    }


def status_now(now=None):
    """The status panel's checks alone (for the API), with the spend they weigh summed as the budget check sums it."""
    now = now or timezone.now()
    today = days.today(now)
    return status.checks(spending.spent_since(today, today), spending.spent_since(today.replace(day=1), today), now)


def _days_from(first, count):
    return [first + timedelta(n) for n in range(count)]


def recent(limit=20):
    return Generation.objects.select_related("user")[:limit]
