"""Daily image quota and the tier's pace: reserve before the paid call, commit on delivery, release on
failure.

A reservation is one conditional UPDATE of the user's row for the day, which checks every rule of the
tier at once (images left today, jobs at once, cooldown): two concurrent requests can never both take a
user's last image or last job slot, on PostgreSQL or SQLite alike, and a request costs one statement.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, PositiveIntegerField, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from . import days
from .models import QuotaUsage, TelegramUser


@dataclass(frozen=True)
class Shortfall:
    """The rule that refused a reservation: "quota" (with the images `remaining`), "busy" or "cooldown"
    (with the `seconds` to wait)."""

    rule: str
    remaining: int = 0
    seconds: int = 0


def reserve(user: TelegramUser, day: date, count: int = 1, now: datetime | None = None) -> bool:
    """Reserve `count` images, one job, for `user` on `day` (asked at `now`); False when a rule of their
    tier refuses (`shortfall` says which).

    Inside a transaction, the UPDATE also locks the user's row for the day until commit, so the same
    user's parallel requests queue behind each other from here on, each seeing the others'.
    """
    now = now or timezone.now()
    allowed = _allowed(user, day, count, now)
    taken = {"reserved": F("reserved") + count, "open_jobs": F("open_jobs") + 1, "last_request_at": now}
    if allowed.update(**taken):
        return True
    # No row yet (the day's first request), or a rule refuses: make sure the row exists, ask again.
    QuotaUsage.objects.bulk_create([QuotaUsage(user=user, day=day)], ignore_conflicts=True)
    return allowed.update(**taken) == 1


def _allowed(user: TelegramUser, day: date, count: int, now: datetime) -> QuerySet[QuotaUsage]:
    tier = user.tier
    usage = QuotaUsage.objects.filter(user=user, day=day)
    if tier.daily_limit is not None:
        usage = usage.filter(used__lte=tier.daily_limit - count - F("reserved") + F("granted"))
    earlier = _earlier_day(user, day, now)
    if earlier is None:
        usage = usage.filter(open_jobs__lt=tier.max_concurrent_jobs)
    else:
        jobs_earlier = Coalesce(Subquery(earlier.values("open_jobs")[:1]), 0, output_field=PositiveIntegerField())
        usage = usage.filter(open_jobs__lt=tier.max_concurrent_jobs - jobs_earlier)
    if tier.cooldown_seconds:
        since = now - timedelta(seconds=tier.cooldown_seconds)
        usage = usage.filter(Q(last_request_at=None) | Q(last_request_at__lte=since))
        if earlier is not None:
            usage = usage.exclude(Exists(earlier.filter(last_request_at__gt=since)))
    return usage


def _earlier_day(user: TelegramUser, day: date, now: datetime) -> QuerySet[QuotaUsage] | None:
    """The day before's row, while its jobs may still be running or its last request still cooling down:
    a request just after midnight still counts them."""
    reach = timedelta(seconds=max(settings.STALE_GENERATION_SECONDS, user.tier.cooldown_seconds))
    if now - days.start_of(day) >= reach:
        return None
    return QuotaUsage.objects.filter(user=user, day=day - timedelta(days=1))


def shortfall(user: TelegramUser, day: date, count: int = 1, now: datetime | None = None) -> Shortfall | None:
    """Why `reserve` refused: the first rule that does, read afresh; None if none does any more (a job
    ended since)."""
    now = now or timezone.now()
    tier = user.tier
    rows = {row.day: row for row in QuotaUsage.objects.filter(user=user, day__in=[day, day - timedelta(days=1)])}
    usage = rows.get(day) or QuotaUsage(user=user, day=day)
    left = remaining(user, day, usage)
    if left is not None and left < count:
        return Shortfall("quota", remaining=left)
    earlier = rows.get(day - timedelta(days=1)) if _earlier_day(user, day, now) is not None else None
    if usage.open_jobs + (earlier.open_jobs if earlier else 0) >= tier.max_concurrent_jobs:
        return Shortfall("busy")
    last = max((row.last_request_at for row in (usage, earlier) if row and row.last_request_at), default=None)
    wait = last + timedelta(seconds=tier.cooldown_seconds) - now if last else timedelta(0)
    if wait > timedelta(0):
        return Shortfall("cooldown", seconds=int(wait.total_seconds()) + 1)
    return None


def commit(user_id: int, day: date, count: int = 1, ends_job: bool = True) -> None:
    """`count` reserved images were delivered; with `ends_job`, their job is over."""
    QuotaUsage.objects.filter(user_id=user_id, day=day, reserved__gte=count).update(
        reserved=F("reserved") - count, used=F("used") + count, **_ended(ends_job)
    )


def release(user_id: int, day: date, count: int = 1, ends_job: bool = True) -> None:
    """`count` reserved images won't be delivered; with `ends_job`, their job is over."""
    QuotaUsage.objects.filter(user_id=user_id, day=day, reserved__gte=count).update(
        reserved=F("reserved") - count, **_ended(ends_job)
    )


def end_job(user_id: int, day: date) -> None:
    """A job whose images were committed or released one by one (a batch) is over."""
    QuotaUsage.objects.filter(user_id=user_id, day=day, open_jobs__gt=0).update(**_ended(True))


def _ended(ends_job: bool) -> dict[str, object]:
    # Never below zero: a job opened before open_jobs was counted may end after it is.
    return {"open_jobs": Greatest(F("open_jobs") - 1, 0)} if ends_job else {}


def remaining(user: TelegramUser, day: date | None = None, usage: QuotaUsage | None = None) -> int | None:
    """Images the user can still start today, or None when the tier is unlimited."""
    limit = user.tier.daily_limit
    if limit is None:
        return None
    usage = usage or QuotaUsage.objects.filter(user=user, day=day or days.today()).first()
    if usage is None:
        return limit
    return max(limit + usage.granted - usage.used - usage.reserved, 0)


def grant(user: TelegramUser, count: int, day: date | None = None) -> None:
    """Give `user` `count` extra images on `day` (default today), on top of their tier's limit."""
    day = day or days.today()
    QuotaUsage.objects.bulk_create([QuotaUsage(user=user, day=day)], ignore_conflicts=True)
    QuotaUsage.objects.filter(user=user, day=day).update(granted=F("granted") + count)
