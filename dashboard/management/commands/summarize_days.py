from datetime import timedelta

from django.core.management.base import BaseCommand

from accounts import days
from botcore import activity, summaries
from botcore.models import SummarizedDay
from dashboard.ranges import PRESETS


class Command(BaseCommand):
    help = (
        "Sum up the closed days the dashboard's reports and analytics read, and the preset cost reports' per-user "
        "figures (kept in the cache). The bot sums up closed days itself once a day; run this after "
        "midnight as well when the cache is shared (CACHE_URL), so no one waits for the top users."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, dest="count", default=summaries.REPORT_DAYS, help="how many days back")

    def handle(self, *args, count, **options):
        summaries.sum_up_closed_days(count)
        activity.sum_up_closed_days()
        today = days.today()
        for length in PRESETS.values():
            summaries.user_totals(today - timedelta(days=length - 1), today)
        summed = SummarizedDay.objects.filter(day__gte=today - timedelta(days=count)).count()
        self.stdout.write(f"{summed} days are summed up")
