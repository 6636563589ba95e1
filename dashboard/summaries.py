"""Day summaries: each closed day's generations summed up once, so reports over long ranges read a
few hundred summary rows plus the open days' generations instead of every row of the range."""

from datetime import datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from botcore.models import Generation

from .models import DaySummary, SummarizedDay

# Latency percentiles come from counts per bucket: a percentile is reported as the upper edge of
# the bucket it falls in. Cumulative: each count includes the faster buckets.
LATENCY_BUCKETS_MS = [2_000, 5_000, 10_000, 15_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000]


def start_of(day):
    """The moment `day` begins in TIME_ZONE."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def created_on(first, last):
    """Generations created from the start of day `first` to the end of day `last`."""
    return Generation.objects.filter(created_at__gte=start_of(first), created_at__lt=start_of(last + timedelta(1)))


def latency_buckets():
    delivered = Q(status=Generation.Status.DELIVERED)
    return {
        f"under_{edge}": Count("pk", filter=delivered & Q(total_latency_ms__lte=edge)) for edge in LATENCY_BUCKETS_MS
    }


def first_open_day():
    """Days before this one are closed. Yesterday still changes: a job started before midnight may
    finish, or be expired by the stale sweep, after it."""
    return timezone.localdate() - timedelta(days=1)


def closed(first, last):
    """The DaySummary rows of the closed days from `first` to `last` (summing up any day not yet
    done), and the first day they don't cover: callers read the generations from there on."""
    end = min(last + timedelta(1), first_open_day())
    if first >= end:
        return DaySummary.objects.none(), first
    done = set(SummarizedDay.objects.filter(day__gte=first, day__lt=end).values_list("day", flat=True))
    for n in range((end - first).days):
        if (day := first + timedelta(n)) not in done:
            summarize(day)
    return DaySummary.objects.filter(day__gte=first, day__lt=end), end


def summarize(day):
    rows = (
        created_on(day, day)
        .values("user__tier__name", "model", "resolution", "status", "error_code", "cache_hit")
        .annotate(images=Count("pk"), spend=Sum("cost_usd"), **latency_buckets())
        .order_by()
    )
    summaries = [
        DaySummary(
            day=day,
            tier=row["user__tier__name"] or "",
            model=row["model"],
            resolution=row["resolution"],
            status=row["status"],
            error_code=row["error_code"],
            cache_hit=row["cache_hit"],
            images=row["images"],
            spend=row["spend"] or 0,
            latency_buckets=[row[f"under_{edge}"] for edge in LATENCY_BUCKETS_MS],
        )
        for row in rows
    ]
    try:
        with transaction.atomic():
            SummarizedDay.objects.create(day=day)
            DaySummary.objects.bulk_create(summaries)
    except IntegrityError:
        pass  # another request summed this day up at the same moment: theirs stands
