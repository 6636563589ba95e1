"""Active users, summed up once per closed day like the day summaries (botcore/summaries.py).

A user is active on a day (in TIME_ZONE) they asked for at least one image, whatever came of it: any
generation row. They are new on their first such day ever. Weeks start on Monday; a user's cohort is
the week of their first active day.

The closed days are summed up in day order, each once: each day's active and new users, and how many
users it is the last active day of so far (DayActivity), so the users active since any day are a sum
over the days since, however many users there are; per cohort and week, how many of the cohort were
active that week (WeekActivity); and what the next day's users need, each one's first and last active
day (UserActivity). The open days are read live from the generations, through their created_at index,
and added on top by the same walk."""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Max, Min, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts import days

from . import summaries
from .models import DayActivity, Generation, UserActivity, WeekActivity

# The days summed up the first time: the longest report's. A user active only before them still has
# their first and last day, from one pass over the older generations.
FIRST_DAYS = summaries.REPORT_DAYS
WRITE_BATCH = 5_000

# (user_id, day, first, last): a user active on `day`, and their first and last active day before
# the days walked (None, None: never before).
UserDay = tuple[int, date, date | None, date | None]


@lru_cache(maxsize=1024)  # asked for every user-day walked: a million when the first days are summed up
def week_of(day: date) -> date:
    """The Monday starting the week `day` is in."""
    return day - timedelta(days=day.weekday())


@dataclass
class Walk:
    """What a run of days adds: per day [active, new] users; per (cohort, week) the users active that
    week, those already active in it before the walk left out; each walked user's (first, last) active
    day, and their last one before the walk (None: new)."""

    days: defaultdict[date, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    weeks: Counter[tuple[date, date]] = field(default_factory=Counter)
    users: dict[int, tuple[date, date]] = field(default_factory=dict)
    before: dict[int, date | None] = field(default_factory=dict)


def walk(user_days: Iterable[UserDay]) -> Walk:
    """Add up `user_days`, distinct and each user's in day order."""
    walked = Walk()
    users, before = walked.users, walked.before
    for user_id, day, first, last in user_days:
        if user_id in users:
            first, last = users[user_id]
        else:
            before[user_id] = last
            first = first or day
        counts, week = walked.days[day], week_of(day)
        counts[0] += 1
        if last is None:
            counts[1] += 1
        if last is None or last < week:  # their first day this week
            walked.weeks[week_of(first), week] += 1
        users[user_id] = (first, day)
    return walked


def _user_days(first: date, last: date) -> QuerySet[Generation, UserDay]:
    """Each user's active days from `first` to `last` (UserDay), their days before from UserActivity:
    looked up per user, by primary key, as a few thousand users a day make a scan of all dearer."""
    summed = UserActivity.objects.filter(pk=OuterRef("user_id"))
    return (
        summaries.created_on(first, last)
        .annotate(
            day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()),
            first_day=Subquery(summed.values("first_day")),
            last_day=Subquery(summed.values("last_day")),
        )
        .values_list("user_id", "day", "first_day", "last_day")
        .distinct()
        .order_by("user_id", "day")
    )


def _first_user_days(start: date, end: date) -> tuple[dict[int, tuple[date, date]], Iterable[UserDay]]:
    """For the first days summed up, from `start` to before `end`: each user's (first, last) active
    day before `start`, from their generations, and the days' UserDays."""
    earlier = (
        Generation.objects.filter(created_at__lt=days.start_of(start))
        .values_list("user_id")
        .annotate(first=Min("created_at"), last=Max("created_at"))
        .order_by()
    )
    known = {user_id: (days.today(first), days.today(last)) for user_id, first, last in earlier}
    user_days = (
        summaries.created_on(start, end - timedelta(days=1))
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .values_list("user_id", "day")
        .distinct()
        .order_by("user_id", "day")
        .iterator(chunk_size=WRITE_BATCH)
    )
    return known, ((user_id, day, *known.get(user_id, (None, None))) for user_id, day in user_days)


def sum_up_closed_days() -> date:
    """Sum up the closed days not yet summed up, in day order; the first day not summed up (open)."""
    end = summaries.first_open_day()
    while True:
        last = DayActivity.objects.aggregate(last=Max("day"))["last"]
        if last is None:
            oldest = Generation.objects.aggregate(oldest=Min("created_at"))["oldest"]
            if oldest is None:
                return end
            start = max(days.today(oldest), end - timedelta(days=FIRST_DAYS))
        else:
            start = last + timedelta(days=1)
        if start >= end:
            return start
        if last is None:
            earlier, user_days = _first_user_days(start, end)
        else:
            earlier, user_days = {}, _user_days(start, end - timedelta(days=1)).iterator(chunk_size=WRITE_BATCH)
        walked = walk(user_days)
        try:
            _keep(start, end, walked, earlier)
            return end
        except IntegrityError:
            # Another process summed up these days at the same moment: theirs stand.
            if DayActivity.objects.filter(day=start).exists():
                continue
            raise


@transaction.atomic
def _keep(start: date, end: date, walked: Walk, earlier: Mapping[int, tuple[date, date]]) -> None:
    """Keep what the days from `start` to before `end` add; `earlier`: the first and last active days
    of the users before the first days summed up."""
    # The days' rows first: a process summing up the same days waits here and fails, before writing anything.
    latest = Counter(last for _, last in walked.users.values())
    DayActivity.objects.bulk_create(
        DayActivity(day=day, active=walked.days[day][0], new=walked.days[day][1], latest=latest[day])
        for day in (start + timedelta(days=n) for n in range((end - start).days))
    )
    returned = Counter(last for last in walked.before.values() if last is not None)
    if returned and not earlier:  # the first days summed up have no days before them to correct
        # The users back since their last active day: it is no longer their latest.
        by_day = [When(day=day, then=Value(users)) for day, users in returned.items()]
        DayActivity.objects.filter(day__in=returned).update(latest=F("latest") - Case(*by_day, default=Value(0)))
    UserActivity.objects.bulk_create(
        (
            UserActivity(user_id=user_id, first_day=first, last_day=last)
            for user_id, (first, last) in {**earlier, **walked.users}.items()
        ),
        batch_size=WRITE_BATCH,
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["last_day"],
    )
    added = Counter(walked.weeks)
    for row in WeekActivity.objects.filter(week__in={week for _, week in added}):
        if (row.cohort, row.week) in walked.weeks:
            added[row.cohort, row.week] += row.users
    WeekActivity.objects.bulk_create(
        (WeekActivity(cohort=cohort, week=week, users=users) for (cohort, week), users in added.items()),
        update_conflicts=True,
        unique_fields=["cohort", "week"],
        update_fields=["users"],
    )


class Activity:
    """Active users from day `since` to today: the closed days' summaries (summing up any day not yet
    done) with the open days read from the generations and added by the same walk."""

    def __init__(self, since: date) -> None:
        self.today, self.since = days.today(), since
        self.open_from = min(sum_up_closed_days(), self.today)
        self.summed = list(DayActivity.objects.filter(day__gte=since, day__lt=self.open_from).order_by("day"))
        self.live = walk(_user_days(self.open_from, self.today))

    def by_day(self) -> list[tuple[date, int, int]]:
        """(day, active, new) for each day from `since` to today."""
        found = {row.day: [row.active, row.new] for row in self.summed} | self.live.days
        count = (self.today - self.since).days + 1
        return [(day, *found.get(day, (0, 0))) for day in (self.since + timedelta(days=n) for n in range(count))]

    def users_since(self, first: date) -> tuple[int, int]:
        """(active, new) users from `first` (not before `since`) to today."""
        assert first >= self.since
        summed = [row for row in self.summed if row.day >= first]
        active, new = sum(row.latest for row in summed), sum(row.new for row in summed)
        # The open days' users, those counted in the summed-up days left out.
        for user_id, (first_day, last_day) in self.live.users.items():
            before = self.live.before[user_id]
            active += last_day >= first and (before is None or before < first)
            new += before is None and first_day >= first
        return active, new

    def cohorts(self, count: int) -> list[tuple[date, list[int]]]:
        """The last `count` weeks' cohorts, oldest first: (its Monday, the users of it active in each week
        from its own to this one). The first figure is the cohort's size: all its users were active then."""
        this_week = week_of(self.today)
        weeks = [this_week - timedelta(weeks=n) for n in reversed(range(count))]
        kept = WeekActivity.objects.filter(cohort__gte=weeks[0])
        found = Counter({(row.cohort, row.week): row.users for row in kept})
        found.update(self.live.weeks)
        return [(cohort, [found[cohort, week] for week in weeks if week >= cohort]) for cohort in weeks]
