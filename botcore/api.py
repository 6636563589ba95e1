"""The JSON API's read-only view of generations."""

from datetime import datetime

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


# Far enough from the calendar's ends that TIME_ZONE's offset can't carry a moment past them (the
# database needs it in UTC), and wide enough for every generation there is or will be.
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 1, 1)


class GenerationFilter(Schema):
    status: Generation.Status | None = None
    telegram_id: int | None = None
    model: str | None = None
    resolution: Resolution | None = None
    since: datetime | None = Field(
        None,
        ge=EARLIEST,
        le=LATEST,
        description="Created at or after (ISO 8601; no zone: TIME_ZONE); from 2000-01-01 to 2100-01-01.",
    )
    until: datetime | None = Field(None, ge=EARLIEST, le=LATEST, description="Created before; the same bounds.")


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
