from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from dashboard import summaries


class Command(BaseCommand):
    help = "Sum up the closed days the dashboard's reports read (run daily, e.g. from cron, to keep first views fast)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=92, help="how many days back (default 92)")

    def handle(self, *args, days, **options):
        today = timezone.localdate()
        summed, _ = summaries.closed(today - timedelta(days=days), today)
        self.stdout.write(f"{summed.values('day').distinct().count()} days with generations are summed up")
