"""Read-only aggregations for the dashboard."""

from django.db.models import Count, Q, Sum

from accounts.quota import today as quota_today
from botcore.models import Generation


def today():
    day = quota_today()
    Status = Generation.Status
    return Generation.objects.filter(created_at__date=day).aggregate(
        delivered=Count("pk", filter=Q(status=Status.DELIVERED)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        refused=Count("pk", filter=Q(status=Status.REFUSED)),
        in_progress=Count("pk", filter=Q(status__in=Generation.OPEN)),
        spend=Sum("cost_usd", default=0),
    )


def recent(limit=20):
    return Generation.objects.select_related("user")[:limit]
