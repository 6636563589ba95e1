"""Read-only aggregations for the overview page and the API's stats."""

from collections import Counter
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Sum

from accounts import days
from botcore import summaries
from botcore.models import Generation
from botcore.summaries import LATENCY_BUCKETS_MS


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


def overview(now=None):
    today = days.today(now)
    month_rows = summaries.rows(today.replace(day=1), today)  # today's are among them
    month = figures_of(month_rows)
    budget = settings.MONTHLY_BUDGET_USD
    return {
        "today": figures_of([row for row in month_rows if row.day == today]),
        "month": month,
        "budget": budget,
        "budget_used": month["spend"] / budget if budget else None,
        "running": Generation.objects.filter(status=Generation.Status.RUNNING).count(),
        "queued": Generation.objects.filter(status=Generation.Status.QUEUED).count(),
        "errors": Generation.objects.filter(status=Generation.Status.FAILED).select_related("user")[:10],
        "top_users": list(
            Generation.objects.filter(created_at__gte=days.start_of(today), status=Generation.Status.DELIVERED)
            .values("user__telegram_id", "user__username", "user__first_name")
            .annotate(images=Count("pk"), spend=Sum("cost_usd"))
            .order_by("-images")[:10]
        ),
    }


def recent(limit=20):
    return Generation.objects.select_related("user")[:limit]
