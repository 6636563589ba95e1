from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import LedgerEntry, Resolution, TelegramUser


class Generation(models.Model):
    """One image request and everything that happened to it: the log behind quota, costs and reports."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        REFUSED = "refused", _("Refused")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")  # from a description alone
        EDIT = "edit", _("Edit")  # from the user's photos
        REFINE = "refine", _("Refine")  # an instruction in reply to one of our results
        REGENERATE = "regenerate", _("Regenerate")  # the same request again (result button)
        VARIATION = "variation", _("Variation")  # a different take on a result (result button)
        UPSCALE = "upscale", _("Upscale")  # a result re-rendered at 4K (result button)

    OPEN = (Status.QUEUED, Status.RUNNING)

    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="generations")
    # The user's tier when they asked: cost reports count spend against it, not a tier they moved to.
    tier = models.CharField(max_length=50, blank=True)
    chat_id = models.BigIntegerField()
    request_message_id = models.BigIntegerField(null=True, blank=True)
    status_message_id = models.BigIntegerField(null=True, blank=True)
    prompt = models.TextField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The result this one builds on.",
    )
    batch_key = models.CharField(max_length=32, blank=True, help_text="Shared by the images of one /batch request.")
    resolution = models.CharField(max_length=2, choices=Resolution.choices, default=Resolution.R2K)
    aspect_ratio = models.CharField(max_length=5, default="1:1")
    reference_count = models.PositiveSmallIntegerField(default=0)
    references = models.JSONField(default=list, blank=True, help_text="Telegram file_ids of the input images.")
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    upstream_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    total_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    file_id = models.CharField(max_length=200, blank=True, help_text="Telegram file_id of the photo sent.")
    document_file_id = models.CharField(max_length=200, blank=True, help_text="Telegram file_id of the original.")
    result_message_id = models.BigIntegerField(null=True, blank=True, help_text="The message carrying the result.")
    document_message_id = models.BigIntegerField(null=True, blank=True, help_text="The message with the original.")
    original = models.FileField(upload_to="results/%Y/%m/%d", blank=True, help_text="Kept for RESULT_KEEP_DAYS.")
    thought_signature = models.TextField(blank=True, help_text="Gemini's, for refining this result.")
    model_turn = models.JSONField(
        default=list, blank=True, help_text="Gemini's answer without its image data, sent back when refining this."
    )
    cache_key = models.CharField(max_length=64, blank=True, db_index=True)
    cache_hit = models.BooleanField(default=False)
    quota_day = models.DateField(null=True, blank=True, help_text="The quota day charged; empty when refused.")
    # Made with a credit rather than a free image of the day: the spend held for it.
    credit = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who runs a started job, until when: the runner renews the lease while it works, so a job whose
    # lease ran out belongs to a process that died, and is recovered without waiting for the stale sweep.
    runner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a runner took this job.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"]),
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["model", "resolution", "created_at"]),
            models.Index(fields=["chat_id", "result_message_id"]),
            models.Index(fields=["chat_id", "document_message_id"]),
            models.Index(fields=["status", "lease_until"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status} {self.prompt[:40]}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class ProcessedUpdate(models.Model):
    """A Telegram update the bot has taken: Telegram sends an update again when a webhook answer is
    slow or a poll is cut, and the second copy must not make a second (paid) image."""

    bot_id = models.BigIntegerField()  # update ids are the bot's own: a new token starts anywhere
    update_id = models.BigIntegerField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bot_id", "update_id"], name="one_update_per_bot")]

    def __str__(self) -> str:
        return f"{self.bot_id}/{self.update_id}"


class Heartbeat(models.Model):
    """A process serving the bot (the bot itself, polling or behind the webhook, a Celery worker, or celery
    beat) saying it is alive: written every heartbeats.EVERY_SECONDS, read by heartbeats.processes()."""

    class Kind(models.TextChoices):
        BOT = "bot", _("Bot")
        WORKER = "worker", _("Worker")
        BEAT = "beat", _("Beat")

    name = models.CharField(max_length=200, unique=True)  # host:pid:random, as it names the jobs it runs
    kind = models.CharField(max_length=10, choices=Kind.choices)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class DaySummary(models.Model):
    """The generations of one closed day (in TIME_ZONE), summed by what reports group on.

    Filled once, the first time a report needs that day (botcore/summaries.py), and read instead of the
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
    # Delivered images at or under each of summaries.LATENCY_BUCKETS_MS, for latency percentiles.
    latency_buckets = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "dashboard_daysummary"  # made by the dashboard app, which held it first
        indexes = [models.Index(fields=["day"], name="dashboard_d_day_a95c58_idx")]


class SummarizedDay(models.Model):
    """A day whose DaySummary rows are complete (a day without generations has none)."""

    day = models.DateField(unique=True)

    class Meta:
        db_table = "dashboard_summarizedday"


class UserActivity(models.Model):
    """A user's first and last day (in TIME_ZONE) with a generation, of the days summed up in
    botcore/activity.py: what a newly closed day's users add to the counts depends on them."""

    user = models.OneToOneField(TelegramUser, on_delete=models.CASCADE, primary_key=True, related_name="+")
    first_day = models.DateField()
    last_day = models.DateField()


class DayActivity(models.Model):
    """One closed day's active users (those with a generation that day) and, of them, the new ones
    (their first generation ever). Every day from the first summed up on has a row, idle ones too.

    `latest` counts the users whose last active day this is so far, and goes down as they come back:
    the users active since a day are the sum of `latest` from that day on."""

    day = models.DateField(unique=True)
    active = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    latest = models.PositiveIntegerField(default=0)


class WeekActivity(models.Model):
    """Of the users whose first active day was in the week starting `cohort` (a Monday), how many
    were active in the week starting `week`, in the closed days."""

    cohort = models.DateField()
    week = models.DateField()
    users = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cohort", "week"], name="one_count_per_cohort_week")]
