"""Read-only aggregations for the overview page and the API's stats."""

from datetime import datetime, time

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from botcore.models import Generation

# Latency percentiles come from counts per bucket (one aggregate query, whatever the row count):
# a percentile is reported as the upper edge of the bucket it falls in.
LATENCY_BUCKETS_MS = [2_000, 5_000, 10_000, 15_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000]


def day_start(now=None):
    """Midnight of today in TIME_ZONE, when the quota day begins."""
    local = timezone.localtime(now)
    return timezone.make_aware(datetime.combine(local.date(), time.min), local.tzinfo)


def month_start(now=None):
    return day_start(now).replace(day=1)


def today(now=None):
    Status = Generation.Status
    return Generation.objects.filter(created_at__gte=day_start(now)).aggregate(
        delivered=Count("pk", filter=Q(status=Status.DELIVERED)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        refused=Count("pk", filter=Q(status=Status.REFUSED)),
        in_progress=Count("pk", filter=Q(status__in=Generation.OPEN)),
        spend=Sum("cost_usd", default=0),
    )


def period(since):
    """Figures of the generations created since `since`."""
    Status = Generation.Status
    delivered = Q(status=Status.DELIVERED)
    buckets = {
        f"under_{edge}": Count("pk", filter=delivered & Q(total_latency_ms__lte=edge)) for edge in LATENCY_BUCKETS_MS
    }
    figures = Generation.objects.filter(created_at__gte=since).aggregate(
        delivered=Count("pk", filter=delivered),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        refused=Count("pk", filter=Q(status=Status.REFUSED)),
        cache_hits=Count("pk", filter=Q(cache_hit=True)),
        spend=Sum("cost_usd", default=0),
        timed=Count("total_latency_ms", filter=delivered),
        **buckets,
    )
    finished = figures["delivered"] + figures["failed"]
    figures["success_rate"] = figures["delivered"] / finished if finished else None
    counts = [figures.pop(f"under_{edge}") for edge in LATENCY_BUCKETS_MS]
    figures["p50_ms"] = _percentile(0.50, figures["timed"], counts)
    figures["p95_ms"] = _percentile(0.95, figures["timed"], counts)
    figures["failures"] = list(
        Generation.objects.filter(created_at__gte=since, status=Status.FAILED)
        .values("error_code")
        .annotate(count=Count("pk"))
        .order_by("-count")
    )
    return figures


def _percentile(share, total, cumulative_counts):
    if not total:
        return None
    for edge, count in zip(LATENCY_BUCKETS_MS, cumulative_counts, strict=True):
        if count >= share * total:
            return edge
    return None  # beyond the last bucket: slower than anything we name


def overview(now=None):
    month = period(month_start(now))
    budget = settings.MONTHLY_BUDGET_USD
    return {
        "today": period(day_start(now)),
        "month": month,
        "budget": budget,
        "budget_used": month["spend"] / budget if budget else None,
        "running": Generation.objects.filter(status=Generation.Status.RUNNING).count(),
        "queued": Generation.objects.filter(status=Generation.Status.QUEUED).count(),
        "errors": Generation.objects.filter(status=Generation.Status.FAILED).select_related("user")[:10],
        "top_users": list(
            Generation.objects.filter(created_at__gte=day_start(now), status=Generation.Status.DELIVERED)
            .values("user__telegram_id", "user__username", "user__first_name")
            .annotate(images=Count("pk"), spend=Sum("cost_usd"))
            .order_by("-images")[:10]
        ),
    }


def recent(limit=20):
    return Generation.objects.select_related("user")[:limit]
