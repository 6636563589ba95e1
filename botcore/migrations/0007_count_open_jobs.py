# The quota row of a day now counts that day's open jobs and remembers its last request (the tier's jobs
# at once and cooldown are checked there): they are filled in from the generation log.

from datetime import timedelta

from django.db import migrations
from django.db.models import Count, Max, Q
from django.utils import timezone

OPEN = ["queued", "running"]


def count_open_jobs(apps, schema_editor):
    Generation = apps.get_model("botcore", "Generation")
    QuotaUsage = apps.get_model("accounts", "QuotaUsage")
    asked = Generation.objects.exclude(quota_day=None)
    # Only the last two days' requests can still be cooling down; every open job counts.
    recent = asked.filter(Q(status__in=OPEN) | Q(created_at__gte=timezone.now() - timedelta(days=2)))
    is_open = Q(status__in=OPEN)
    rows = recent.order_by().values("user_id", "quota_day").annotate(
        last=Max("created_at", filter=~Q(status="refused")),
        single=Count("pk", filter=is_open & Q(batch_key="")),
        batches=Count("batch_key", filter=is_open & ~Q(batch_key=""), distinct=True),
    )
    for row in rows:
        QuotaUsage.objects.filter(user_id=row["user_id"], day=row["quota_day"]).update(
            open_jobs=row["single"] + row["batches"], last_request_at=row["last"]
        )


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0008_quota_open_jobs"),
        ("botcore", "0006_day_summaries_from_dashboard"),
    ]

    operations = [migrations.RunPython(count_open_jobs, migrations.RunPython.noop)]
