import hashlib
from datetime import datetime
from typing import Any, Self

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Resolution(models.TextChoices):
    # Labelled, or Django would show the members' names ("R1K") to people.
    R1K = "1K", "1K"
    R2K = "2K", "2K"
    R4K = "4K", "4K"


RESOLUTION_ORDER: list[str] = [Resolution.R1K, Resolution.R2K, Resolution.R4K]
ASPECT_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]


class Tier(models.Model):
    name = models.CharField(max_length=50, unique=True)
    daily_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Images per day; empty means unlimited.")
    max_resolution = models.CharField(max_length=2, choices=Resolution.choices, default=Resolution.R2K)
    cooldown_seconds = models.PositiveIntegerField(default=0, help_text="Minimum wait between two requests.")
    max_concurrent_jobs = models.PositiveIntegerField(default=1)
    is_default = models.BooleanField(default=False, help_text="New users start on this tier.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_tier"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_unlimited(self) -> bool:
        return self.daily_limit is None

    def allows(self, resolution: str) -> bool:
        return RESOLUTION_ORDER.index(resolution) <= RESOLUTION_ORDER.index(self.max_resolution)


class TelegramUser(models.Model):
    telegram_id = models.BigIntegerField(unique=True)
    username = models.CharField(max_length=64, blank=True, db_index=True)
    first_name = models.CharField(max_length=128, blank=True)
    language_code = models.CharField(max_length=16, blank=True)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="users")
    resolution = models.CharField(max_length=2, choices=Resolution.choices, default=Resolution.R2K)
    aspect_ratio = models.CharField(max_length=5, default="1:1")
    is_active = models.BooleanField(default=True, help_text="False once the user has blocked the bot.")
    # Most users are never banned: their bans are looked up only once they have had one.
    ever_banned = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    # The sum of the user's ledger (credits.py), kept here so a reservation is one conditional UPDATE.
    credits = models.PositiveIntegerField(default=0, editable=False)
    # A pack's tier upgrade: on `tier` until then, then back on `tier_after` (the default tier if empty).
    tier_until = models.DateTimeField(null=True, blank=True)
    tier_after = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        # The dashboard's users list sorts by it (who was here lately); it is written at most once a
        # minute per user (users.SEEN_RESOLUTION), so keeping the index up costs little.
        indexes = [models.Index(fields=["last_seen_at"], name="accounts_user_last_seen")]

    def __str__(self) -> str:
        return f"@{self.username}" if self.username else f"{self.first_name or 'user'} ({self.telegram_id})"


class BanQuerySet(models.QuerySet["Ban"]):
    def active(self, now: datetime | None = None) -> Self:
        now = now or timezone.now()
        return self.filter(lifted_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class Ban(models.Model):
    user = models.ForeignKey(TelegramUser, on_delete=models.CASCADE, related_name="bans")
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty means until lifted.")
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = BanQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "lifted_at"])]

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        # Never cleared (a ban ending needs no write): it only says whether there are bans to look at.
        TelegramUser.objects.filter(pk=self.user_id, ever_banned=False).update(ever_banned=True)
        if Ban.user.is_cached(self):
            self.user.ever_banned = True

    def __str__(self) -> str:
        return f"{self.user}: {self.reason}"


class BannedKeyword(models.Model):
    phrase = models.CharField(max_length=200, unique=True)
    is_active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["phrase"]

    def __str__(self) -> str:
        return self.phrase


class QuotaUsage(models.Model):
    """Images a user has had (used) and has in flight (reserved) on one quota day, with the jobs still
    open and the last request: the tier's daily limit, jobs at once and cooldown are checked here."""

    user = models.ForeignKey(TelegramUser, on_delete=models.CASCADE, related_name="quota_days")
    day = models.DateField()
    used = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0)
    granted = models.PositiveIntegerField(default=0, help_text="Extra images staff granted for this day.")
    open_jobs = models.PositiveIntegerField(default=0, help_text="This day's jobs not over yet; a batch is one.")
    last_request_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="one_usage_row_per_user_day")]

    def __str__(self) -> str:
        return f"{self.user} {self.day}: {self.used} used, {self.reserved} reserved"


class AuditEntry(models.Model):
    """One change a staff member made, with what it was before and after."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, help_text="Kept when the account is deleted.")
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=200, help_text="What was changed, as staff would name it.")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target}"


def hash_key(key: str) -> str:
    """What an API key is stored and looked up as."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A staff member's key for the JSON API; only its hash (hash_key) is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} / {self.name}"


class Broadcast(models.Model):
    """A message staff send to every active user, or to one tier's; sent by a background job."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Failure(models.TextChoices):
        """Why a broadcast stopped before reaching everyone, as staff can act on it."""

        NO_TOKEN = "no_token", _("The bot has no token: set TELEGRAM_BOT_TOKEN.")
        TOKEN_REJECTED = "token_rejected", _("Telegram rejected the bot's token (TELEGRAM_BOT_TOKEN).")
        UNREACHABLE = "unreachable", _("Telegram could not be reached; send it again later.")
        ERROR = "error", _("An unexpected error stopped it; the server's log has the details.")
        QUEUE_UNREACHABLE = (
            "queue_unreachable",
            _("The task queue (CELERY_BROKER_URL) could not be reached; send it again once it is back."),
        )

    text = models.TextField()
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, help_text="Empty: everyone.")
    # Who it went to, as staff would say it: the tier's name when it was sent ("" for everyone), which
    # stays right when the tier is renamed or deleted later.
    audience = models.CharField(max_length=50, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    blocked = models.PositiveIntegerField(default=0, help_text="Users who had blocked the bot; now inactive.")
    failed = models.PositiveIntegerField(default=0)
    failure = models.CharField(max_length=20, choices=Failure.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written with every step (queued, taken, each batch, finished): progress that stopped moving means
    # the process sending it died (broadcasts.progress).
    updated_at = models.DateTimeField(default=timezone.now)
    resume_after = models.PositiveBigIntegerField(
        default=0, help_text="The last user (pk) the sending went through; sending the rest starts after it."
    )
    # Counted up each time a process takes it: a process that finds a newer number has been replaced, and stops.
    run = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"broadcast {self.pk} ({self.status})"

    def recipients(self) -> models.QuerySet[TelegramUser]:
        users = TelegramUser.objects.filter(is_active=True)
        if self.audience and self.tier_id is None:
            return users.none()  # its tier was deleted: those users aren't "everyone"
        return users.filter(tier=self.tier_id) if self.tier_id else users


class FailedRecipient(models.Model):
    """A user a broadcast did not reach, and why; Telegram's own words for an error that has no name here."""

    class Reason(models.TextChoices):
        BLOCKED = "blocked", _("Blocked the bot.")
        DEACTIVATED = "deactivated", _("Deleted their Telegram account.")
        CHAT_NOT_FOUND = "chat_not_found", _("Chat not found: they never started the bot, or the chat is gone.")
        ERROR = "error", _("Telegram refused the message.")

    # Read a page at a time in send order: the index below, not the foreign key's own.
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="failed_recipients", db_index=False)
    user = models.ForeignKey(TelegramUser, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    description = models.CharField(max_length=300, blank=True, help_text="Telegram's answer, as it said it.")

    class Meta:
        indexes = [models.Index(fields=["broadcast", "id"])]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.reason}"

    @property
    def sentence(self) -> str:
        if self.reason == self.Reason.ERROR and self.description:
            return _("Telegram refused the message: %(description)s") % {"description": self.description}
        return str(self.get_reason_display())


class CreditPack(models.Model):
    """Images sold for Telegram Stars, with a tier upgrade for some days when `tier` is set."""

    name = models.CharField(max_length=32, help_text="Shown on the button and the invoice (Telegram allows 32).")
    stars = models.PositiveIntegerField(help_text="Price in Telegram Stars.")
    images = models.PositiveIntegerField(help_text="Credits: one image each, after the daily free images.")
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="Upgrade to this tier…"
    )
    tier_days = models.PositiveIntegerField(null=True, blank=True, help_text="…for this many days.")
    is_active = models.BooleanField(default=True, help_text="On sale in /buy.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["stars", "pk"]

    def __str__(self) -> str:
        return self.name


class Payment(models.Model):
    """A pack bought with Telegram Stars, as Telegram confirmed it (successful_payment), and whether it was
    refunded. One per charge: Telegram's charge id is unique, so a payment reported twice is credited once."""

    class Status(models.TextChoices):
        PAID = "paid", _("Paid")
        REFUNDED = "refunded", _("Refunded")

    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="payments")
    pack = models.ForeignKey(CreditPack, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments")
    # What was sold, as the invoice said it: kept when the pack is changed or removed later.
    pack_name = models.CharField(max_length=32)
    stars = models.PositiveIntegerField()
    images = models.PositiveIntegerField()
    tier = models.CharField(max_length=50, blank=True, help_text="The tier the pack upgraded the user to.")
    tier_until = models.DateTimeField(null=True, blank=True)
    charge_id = models.CharField(max_length=255, unique=True, help_text="Telegram's telegram_payment_charge_id.")
    payload = models.CharField(max_length=128)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PAID)
    paid_at = models.DateTimeField(default=timezone.now, db_index=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-paid_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.pack_name} ({self.stars} ⭐) by {self.user}"


class LedgerEntry(models.Model):
    """One change to a user's credits: a grant or purchase adds a lot of them (which may expire); a spend,
    refund or expiry takes some from one lot. A user's credits are the sum of their entries (credits.py).

    A spend is held while its image is being made, and is done once it is delivered, or released (counting
    for nothing) when it isn't: the user pays only for images they get."""

    class Kind(models.TextChoices):
        GRANT = "grant", _("Grant")
        PURCHASE = "purchase", _("Purchase")
        SPEND = "spend", _("Spend")
        REFUND = "refund", _("Refund")
        EXPIRY = "expiry", _("Expiry")

    class State(models.TextChoices):
        DONE = "done", _("Done")
        HELD = "held", _("Held")
        RELEASED = "released", _("Released")

    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    images = models.IntegerField(help_text="Credits added (positive) or taken (negative).")
    state = models.CharField(max_length=10, choices=State.choices, default=State.DONE)
    lot = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="uses", help_text="Taken from this lot."
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="A lot's unused credits expire then.")
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["kind", "expires_at"], name="accounts_ledger_expiring"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.kind} {self.images:+d}"
