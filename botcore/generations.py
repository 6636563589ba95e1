"""The decisions about a generation, as plain synchronous functions.

Handlers, the webhook, Celery tasks and the dashboard all call these; the async pipeline in
jobs.py reaches them through sync_to_async. Every status change goes through `start` or
`finish`, each a conditional UPDATE, so a duplicate or replayed job can't charge twice.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from accounts import moderation, quota
from accounts.users import user_touch

from .models import Generation

log = logging.getLogger(__name__)

MIN_PROMPT_CHARS = 3
MAX_PROMPT_CHARS = 4000


class Refusal(Exception):
    """A request we won't run; `code` and `params` pick and fill the message the user sees."""

    def __init__(self, code, **params):
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Identity:
    """Who sent an update, as Telegram describes them."""

    telegram_id: int
    username: str = ""
    first_name: str = ""
    language_code: str = ""

    def touch(self):
        return user_touch(
            telegram_id=self.telegram_id,
            username=self.username,
            first_name=self.first_name,
            language_code=self.language_code,
        )


def price(model, resolution):
    return settings.IMAGE_PRICES.get(model, {}).get(resolution, Decimal(0))


def request(*, identity, chat_id, prompt, resolution=None, aspect_ratio=None, message_id=None):
    """Validate, moderate and reserve quota for one image; the queued Generation, or Refusal."""
    user = identity.touch()
    prompt = prompt.strip()
    if len(prompt) < MIN_PROMPT_CHARS:
        raise Refusal("prompt_too_short", minimum=MIN_PROMPT_CHARS)
    if len(prompt) > MAX_PROMPT_CHARS:
        raise Refusal("prompt_too_long", maximum=MAX_PROMPT_CHARS)
    ban = moderation.active_ban(user)
    if ban:
        raise Refusal("banned", reason=ban.reason, until=ban.expires_at)
    resolution = resolution or user.resolution
    aspect_ratio = aspect_ratio or user.aspect_ratio
    log_fields = {
        "user": user,
        "chat_id": chat_id,
        "request_message_id": message_id,
        "prompt": prompt,
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
        "model": settings.IMAGE_MODEL,
    }
    keyword = moderation.matching_keyword(prompt)
    if keyword:
        Generation.objects.create(
            **log_fields, status=Generation.Status.REFUSED, error_code="banned_keyword", error_message=keyword
        )
        raise Refusal("banned_keyword")
    if not user.tier.allows(resolution):
        raise Refusal("resolution", resolution=resolution, maximum=user.tier.max_resolution)
    with transaction.atomic():
        # The reservation comes first: its UPDATE locks the user's quota row until commit, so the
        # same user's parallel messages pass the checks below one at a time, each seeing the others'.
        # A refusal below rolls the reservation back with the rest.
        day = quota.today()
        if not quota.reserve(user, day):
            raise Refusal("quota", limit=user.tier.daily_limit)
        tier = user.tier
        now = timezone.now()
        # Open generations older than the stale limit are expired, so this window sees all that count.
        window = timedelta(seconds=max(settings.STALE_GENERATION_SECONDS, tier.cooldown_seconds))
        stats = (
            Generation.objects.filter(user=user, created_at__gte=now - window)
            .exclude(status=Generation.Status.REFUSED)
            .aggregate(last=Max("created_at"), open=Count("pk", filter=Q(status__in=Generation.OPEN)))
        )
        if stats["open"] >= tier.max_concurrent_jobs:
            raise Refusal("busy", limit=tier.max_concurrent_jobs)
        if tier.cooldown_seconds and stats["last"]:
            wait = stats["last"] + timedelta(seconds=tier.cooldown_seconds) - now
            if wait > timedelta(0):
                raise Refusal("cooldown", seconds=int(wait.total_seconds()) + 1)
        return Generation.objects.create(**log_fields, quota_day=day, created_at=now)


def start(generation, status_message_id=None):
    """Move a queued generation to running; False when it is not queued (already taken or expired)."""
    fields = {"status": Generation.Status.RUNNING, "started_at": timezone.now()}
    if status_message_id:
        fields["status_message_id"] = status_message_id
    if not Generation.objects.filter(pk=generation.pk, status=Generation.Status.QUEUED).update(**fields):
        return False
    for name, value in fields.items():
        setattr(generation, name, value)
    return True


def finish(generation, status, **fields):
    """Close an open generation as delivered (charging its quota) or failed (releasing it).

    Returns False when it was already closed, so a replay changes nothing.
    """
    with transaction.atomic():
        closed = Generation.objects.filter(pk=generation.pk, status__in=Generation.OPEN).update(
            status=status, finished_at=timezone.now(), **fields
        )
        if not closed:
            return False
        if status == Generation.Status.DELIVERED:
            quota.commit(generation.user_id, generation.quota_day)
        else:
            quota.release(generation.user_id, generation.quota_day)
    return True


def expire_stale():
    """Fail generations left open by a crashed bot or worker, giving their quota back; returns them."""
    cutoff = timezone.now() - timedelta(seconds=settings.STALE_GENERATION_SECONDS)
    stale = Generation.objects.filter(status__in=Generation.OPEN, created_at__lt=cutoff).select_related("user")
    return [
        generation
        for generation in stale
        if finish(generation, Generation.Status.FAILED, error_code="interrupted", error_message="left unfinished")
    ]


def account(identity):
    """The user (registered on first contact) and the images they have left today (None: unlimited)."""
    user = identity.touch()
    return user, quota.remaining(user)
