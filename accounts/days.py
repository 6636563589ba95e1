"""Which day it is. Quota, reports, day summaries and kept files all count days in TIME_ZONE, from
midnight to midnight; every question about days is answered here, so they can't disagree."""

from datetime import date, datetime, time, timedelta

from django.utils import timezone


def today(now: datetime | None = None) -> date:
    """The day `now` (default: this moment) falls on."""
    return timezone.localdate(now)


def start_of(day: date) -> datetime:
    """The moment `day` begins."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The moments the days from `first` to `last` begin and end: [start, end)."""
    return start_of(first), start_of(last + timedelta(days=1))
