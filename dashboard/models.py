from django.db import models


class DaySummary(models.Model):
    """The generations of one closed day (in TIME_ZONE), summed by what reports group on.

    Filled once, the first time a report needs that day (summaries.py), and read instead of the
    day's rows ever after: a 90-day report reads a few hundred of these, not a million generations.
    `tier` is the tier the users were on when they asked.
    """

    day = models.DateField()
    tier = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=100, blank=True)
    resolution = models.CharField(max_length=2, blank=True)
    status = models.CharField(max_length=10)
    error_code = models.CharField(max_length=32, blank=True)
    cache_hit = models.BooleanField(default=False)
    images = models.PositiveIntegerField()
    spend = models.DecimalField(max_digits=14, decimal_places=4)
    # Delivered images at or under each of reports.LATENCY_BUCKETS_MS, for latency percentiles.
    latency_buckets = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["day"])]


class SummarizedDay(models.Model):
    """A day whose DaySummary rows are complete (a day without generations has none)."""

    day = models.DateField(unique=True)
