"""The JSON API's read-only view of generations and what they cost."""

from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from accounts.api import Page
from accounts.models import Resolution

from .models import Generation

router = Router(tags=["generations"])


class GenerationOut(Schema):
    id: int
    telegram_id: int = Field(alias="user.telegram_id")
    username: str = Field(alias="user.username")
    kind: str
    status: str
    prompt: str
    resolution: str
    aspect_ratio: str
    reference_count: int
    parent_id: int | None
    batch_key: str
    provider: str
    model: str
    error_code: str
    error_message: str
    cost_usd: float
    cache_hit: bool
    upstream_latency_ms: int | None
    total_latency_ms: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class GenerationFilter(Schema):
    status: Generation.Status | None = None
    telegram_id: int | None = None
    model: str | None = None
    resolution: Resolution | None = None
    since: datetime | None = Field(None, description="Created at or after (ISO 8601; no zone: TIME_ZONE).")
    until: datetime | None = Field(None, description="Created before.")


def _aware(moment):
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


@router.get("/generations", response=list[GenerationOut], summary="List generations")
@paginate(Page)
def list_generations(request, filters: Query[GenerationFilter]):
    """Newest first; paginate with `limit` (at most 200) and `offset`."""
    found = Generation.objects.select_related("user").order_by("-created_at", "-pk")
    if filters.status:
        found = found.filter(status=filters.status)
    if filters.telegram_id is not None:
        found = found.filter(user__telegram_id=filters.telegram_id)
    if filters.model:
        found = found.filter(model=filters.model)
    if filters.resolution:
        found = found.filter(resolution=filters.resolution)
    if filters.since:
        found = found.filter(created_at__gte=_aware(filters.since))
    if filters.until:
        found = found.filter(created_at__lt=_aware(filters.until))
    return found


class CostRow(Schema):
    day: date
    model: str
    resolution: str
    images: int = Field(description="Images delivered.")
    spend: float = Field(description="USD.")


class CostsOut(Schema):
    since: date
    images: int
    spend: float
    rows: list[CostRow] = Field(description="One per day, model and resolution that had any generation.")


@router.get("/costs", response=CostsOut, summary="Spend and images per day")
def costs(request, days: int = Query(30, ge=1, le=366)):
    """The last `days` quota days (today included, in TIME_ZONE), by day, model and resolution."""
    first = timezone.localdate() - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    rows = list(
        Generation.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "model", "resolution")
        .annotate(
            images=Count("pk", filter=Q(status=Generation.Status.DELIVERED)),
            spend=Sum("cost_usd", default=0),
        )
        .order_by("day", "model", "resolution")
    )
    return {
        "since": first,
        "images": sum(row["images"] for row in rows),
        "spend": sum(row["spend"] for row in rows),
        "rows": rows,
    }
