"""Daily image quota: reserve before the paid call, commit on delivery, release on failure.

The check and the reservation are one conditional UPDATE, so two concurrent requests can
never both take a user's last image, on PostgreSQL or SQLite alike.
"""

from datetime import date

from django.db.models import F

from . import days
from .models import QuotaUsage, TelegramUser


def reserve(user: TelegramUser, day: date, count: int = 1) -> bool:
    """Reserve `count` images for `user` on `day`; False when that would pass the tier's limit.

    Inside a transaction, the UPDATE also locks the user's row for the day until commit, so
    the same user's parallel requests queue behind each other from here on.
    """
    usage = QuotaUsage.objects.filter(user=user, day=day)
    limit = user.tier.daily_limit
    if limit is not None:
        usage = usage.filter(used__lte=limit - count - F("reserved") + F("granted"))
    if usage.update(reserved=F("reserved") + count):
        return True
    # No row yet (the day's first request), or the limit is reached: make sure the row exists, ask again.
    QuotaUsage.objects.bulk_create([QuotaUsage(user=user, day=day)], ignore_conflicts=True)
    return usage.update(reserved=F("reserved") + count) == 1


def commit(user_id: int, day: date, count: int = 1) -> None:
    QuotaUsage.objects.filter(user_id=user_id, day=day, reserved__gte=count).update(
        reserved=F("reserved") - count, used=F("used") + count
    )


def release(user_id: int, day: date, count: int = 1) -> None:
    QuotaUsage.objects.filter(user_id=user_id, day=day, reserved__gte=count).update(reserved=F("reserved") - count)


def remaining(user: TelegramUser, day: date | None = None) -> int | None:
    """Images the user can still start today, or None when the tier is unlimited."""
    limit = user.tier.daily_limit
    if limit is None:
        return None
    usage = QuotaUsage.objects.filter(user=user, day=day or days.today()).first()
    if usage is None:
        return limit
    return max(limit + usage.granted - usage.used - usage.reserved, 0)


def grant(user: TelegramUser, count: int, day: date | None = None) -> None:
    """Give `user` `count` extra images on `day` (default today), on top of their tier's limit."""
    day = day or days.today()
    QuotaUsage.objects.bulk_create([QuotaUsage(user=user, day=day)], ignore_conflicts=True)
    QuotaUsage.objects.filter(user=user, day=day).update(granted=F("granted") + count)
