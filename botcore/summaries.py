"""Day summaries: each closed day's generations summed up once, so reports over long ranges read a
few hundred summary rows plus the open days' generations instead of every row of the range.

Per-user figures don't fit that shape (a 90-day range has a row per active user, 100,000 of them
is normal), so the closed part of a range is summed per user once and kept in the cache."""

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, Count, Min, Q, QuerySet, Sum
from django.db.models.functions import Cast, Round, TruncDate
from django.utils import timezone

from accounts import days

from .models import DaySummary, Generation, SummarizedDay

# Latency percentiles come from counts per bucket: a percentile is reported as the upper edge of
# the bucket it falls in. Cumulative: each count includes the faster buckets.
LATENCY_BUCKETS_MS = [2_000, 5_000, 10_000, 15_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000]


def created_on(first: date, last: date) -> QuerySet[Generation]:
    """Generations created from the start of day `first` to the end of day `last`."""
    start, end = days.bounds(first, last)
    return Generation.objects.filter(created_at__gte=start, created_at__lt=end)


def latency_buckets() -> dict[str, Count]:
    delivered = Q(status=Generation.Status.DELIVERED)
    return {
        f"under_{edge}": Count("pk", filter=delivered & Q(total_latency_ms__lte=edge)) for edge in LATENCY_BUCKETS_MS
    }


def first_open_day() -> date:
    """Days before this one are closed: summed up once, never again. A day closes once none of its
    jobs is queued or running any more (one left open while the bot was down keeps its day open until
    the bot's sweeper expires it), and not before twice STALE_GENERATION_SECONDS after its midnight: a
    paid call that outlives its expired job still logs its cost (within the provider's timeout)."""
    today = days.today()
    midnight = days.start_of(today)
    oldest_open = Generation.objects.filter(status__in=Generation.OPEN, created_at__lt=midnight).aggregate(
        oldest=Min("created_at")
    )["oldest"]
    first = days.today(oldest_open) if oldest_open else today
    # Real time since midnight: an aware now() in UTC, so a clock change at midnight doesn't count.
    if timezone.now() - midnight < timedelta(seconds=2 * settings.STALE_GENERATION_SECONDS):
        first = min(first, today - timedelta(days=1))
    return first


def _closed_until(last: date) -> date:
    """The day after the last closed one up to `last`: reports read the generations from there on."""
    return min(last + timedelta(1), first_open_day())


def closed(first: date, last: date) -> tuple[QuerySet[DaySummary], date]:
    """The DaySummary rows of the closed days from `first` to `last` (summing up any day not yet
    done), and the first day they don't cover: callers read the generations from there on."""
    end = _closed_until(last)
    if first >= end:
        return DaySummary.objects.none(), first
    done = set(SummarizedDay.objects.filter(day__gte=first, day__lt=end).values_list("day", flat=True))
    if missing := [day for n in range((end - first).days) if (day := first + timedelta(n)) not in done]:
        summarize(missing)
    return DaySummary.objects.filter(day__gte=first, day__lt=end), end


USER_TOTALS_SECONDS = 24 * 3600
SPEND_UNIT = Decimal("0.0001")  # Generation.cost_usd's precision


class UserTotals:
    """Per-user figures, ranked by spend, then images delivered, then user id.

    Kept as arrays of integers (spend in SPEND_UNITs): a hundred thousand users unpickle from the
    cache in a millisecond, against a tenth of a second as a dict of Decimals."""

    def __init__(self, rows: Iterable[Sequence[int]] = ()) -> None:
        columns = [array("q") for _ in range(4)]
        for row in rows:  # (user_id, delivered, failed, spend), best first
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        self.user_ids, self.delivered, self.failed, self.spend = columns
        by_id = sorted(range(len(self.user_ids)), key=self.user_ids.__getitem__)
        self.sorted_ids = array("q", (self.user_ids[n] for n in by_id))
        self.positions = array("q", by_id)

    def ranked(self) -> Iterator[tuple[int, int, int, int]]:
        """(user_id, delivered, failed, spend), best first."""
        return zip(self.user_ids, self.delivered, self.failed, self.spend, strict=True)

    def plus(self, more: Mapping[int, Sequence[int]]) -> Iterator[tuple[int, int, int, int]]:
        """(user_id, delivered, failed, spend) of each user in `more` ({user_id: (delivered, failed,
        spend)}), with their figures here added."""
        ids, positions, count = self.sorted_ids, self.positions, len(self.sorted_ids)
        for user_id, (delivered, failed, spend) in more.items():
            n = bisect_left(ids, user_id)
            if n < count and ids[n] == user_id:
                n = positions[n]
                delivered, failed, spend = delivered + self.delivered[n], failed + self.failed[n], spend + self.spend[n]
            yield user_id, delivered, failed, spend


def user_totals(first: date, last: date) -> tuple[UserTotals, date]:
    """The UserTotals of the closed days from `first` to `last`, and the first day they don't
    cover: callers read the generations from there on."""
    end = _closed_until(last)
    if first >= end:
        return UserTotals(), first
    key = f"botcore:user-totals:v2:{first}:{end}"  # v: UserTotals's pickled shape and module
    totals = cache.get(key)
    if totals is None:
        totals = UserTotals(per_user(created_on(first, end - timedelta(1)), ranked=True))
        cache.set(key, totals, USER_TOTALS_SECONDS)
    return totals, end


def per_user(generations: QuerySet[Generation], ranked: bool = False) -> list[tuple[Any, ...]]:
    """(user_id, delivered, failed, spend in SPEND_UNITs) of `generations` per user, best first when
    `ranked`. Read as plain integers, past the ORM: for ten thousand users its per-value
    conversions cost more than the query."""
    grouped = generations.values_list("user_id").annotate(
        delivered=Count("pk", filter=Q(status=Generation.Status.DELIVERED)),
        failed=Count("pk", filter=Q(status=Generation.Status.FAILED)),
        spend=Cast(Round(Sum("cost_usd", default=0) / SPEND_UNIT), BigIntegerField()),
    )
    grouped = grouped.order_by("-spend", "-delivered", "user_id") if ranked else grouped.order_by()
    sql, params = grouped.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


REPORT_DAYS = 92  # the longest preset report (90 days) and a margin


def sum_up_closed_days(count: int = REPORT_DAYS) -> None:
    """Sum up the closed days of the last `count` that aren't yet, ahead of any report asking."""
    today = days.today()
    closed(today - timedelta(days=count), today)


def rows(first: date, last: date) -> list[DaySummary]:
    """DaySummary rows for the days from `first` to `last`: the closed days' as kept (summing up any
    not yet done), the open days' summed up now and not kept."""
    summed, open_from = closed(first, last)
    return [*summed, *_summed_up(created_on(open_from, last))] if open_from <= last else list(summed)


def _summed_up(generations: QuerySet[Generation]) -> list[DaySummary]:
    """Unsaved DaySummary rows of `generations`."""
    grouped = (
        generations.annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .values("day", "tier", "model", "resolution", "status", "error_code", "cache_hit")
        .annotate(images=Count("pk"), spend=Sum("cost_usd"), **latency_buckets())
        .order_by()  # no ORDER BY in SQL: PostgreSQL can then hash the groups instead of sorting every row
    )
    return [
        DaySummary(
            day=row["day"],
            tier=row["tier"],
            model=row["model"],
            resolution=row["resolution"],
            status=row["status"],
            error_code=row["error_code"],
            cache_hit=row["cache_hit"],
            images=row["images"],
            spend=row["spend"] or 0,
            latency_buckets=[row[f"under_{edge}"] for edge in LATENCY_BUCKETS_MS],
        )
        for row in grouped
    ]


def summarize(dates: list[date]) -> None:
    """Sum up the days in `dates` (closed ones) in one pass over the generations from the first to the last."""
    while dates:
        summaries = [row for row in _summed_up(created_on(min(dates), max(dates))) if row.day in dates]
        try:
            with transaction.atomic():
                SummarizedDay.objects.bulk_create([SummarizedDay(day=day) for day in dates])
                DaySummary.objects.bulk_create(summaries)
            return
        except IntegrityError:
            # Another process summed up some of these days at the same moment: theirs stand, and
            # the rest are summed up again without them.
            done = set(SummarizedDay.objects.filter(day__in=dates).values_list("day", flat=True))
            if not done:
                raise
            dates = [day for day in dates if day not in done]
