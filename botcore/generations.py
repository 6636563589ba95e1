"""The decisions about a generation, as plain synchronous functions.

Handlers, the webhook, Celery tasks and the dashboard all call these; the async pipeline in
telegram/jobs.py reaches them through sync_to_async. Every status change goes through `start` or
`finish`, each a conditional UPDATE, so a duplicate or replayed job can't charge twice.
"""

import logging
import math
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, F, Max, Q, Value, When
from django.utils import timezone

from accounts import credits, days, moderation, payments, quota
from accounts.models import ASPECT_RATIOS, LedgerEntry, Resolution, TelegramUser
from accounts.users import user_touch

from . import delivery_mode, metrics
from .errors import ErrorCode
from .models import Generation
from .providers.base import Usage

log = logging.getLogger(__name__)

MIN_PROMPT_CHARS = 3
MAX_PROMPT_CHARS = 4000
MAX_REFERENCES = 14  # what Gemini 3 Pro Image accepts in one request
MAX_BATCH = 4
# A result made (and paid for) but not sent: kept, and offered to its user with a button.
UNDELIVERED = {"status": Generation.Status.FAILED, "error_code": ErrorCode.DELIVERY}
# A job whose runner died more often than this (say, the job itself kills it) is not taken again.
MAX_ATTEMPTS = 3
PAID_FIELDS = ["provider", "model", "upstream_latency_ms", "cost_usd"]
TOKEN_KINDS = ("text_input", "image_input", "text_output", "image_output")
OPTION = re.compile(r"(?<!\S)--(?:(?:ar|aspect)\s+(?P<ratio>\S+)|(?P<size>[124][kK]))(?!\S)")


class Refusal(Exception):
    """A request we won't run; `code` and `params` pick and fill the message the user sees."""

    def __init__(self, code: str, **params: object) -> None:
        self.code = ErrorCode(code)
        super().__init__(self.code)
        self.params = params


@dataclass(frozen=True)
class Identity:
    """Who sent an update, as Telegram describes them."""

    telegram_id: int
    username: str = ""
    first_name: str = ""
    language_code: str = ""

    def touch(self) -> TelegramUser:
        return user_touch(
            telegram_id=self.telegram_id,
            username=self.username,
            first_name=self.first_name,
            language_code=self.language_code,
        )


def price(provider: str, model: str, resolution: str, usage: Usage | None = None) -> Decimal:
    """USD for one image: what its tokens cost when the answer reported them (`usage`, a
    providers.Usage) and the model's token prices are known, else the price per image."""
    rates = settings.IMAGE_TOKEN_PRICES.get(provider, {}).get(model)
    if usage is None or not rates:
        return settings.IMAGE_PRICES.get(provider, {}).get(model, {}).get(resolution, Decimal(0))
    per_million = sum(getattr(usage, kind) * rates.get(kind, Decimal(0)) for kind in TOKEN_KINDS)
    return (per_million / 1_000_000).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def change_defaults(
    *, identity: Identity, resolution: str | None = None, aspect_ratio: str | None = None
) -> TelegramUser:
    """Set the user's default resolution or aspect ratio; the user, or Refusal."""
    user = identity.touch()
    if resolution is not None:
        if resolution not in Resolution.values or not user.tier.allows(resolution):
            raise Refusal(ErrorCode.RESOLUTION, resolution=resolution, maximum=user.tier.max_resolution)
        user.resolution = resolution
    if aspect_ratio is not None:
        if aspect_ratio not in ASPECT_RATIOS:
            raise Refusal(ErrorCode.ASPECT_RATIO, value=aspect_ratio, choices=", ".join(ASPECT_RATIOS))
        user.aspect_ratio = aspect_ratio
    user.save(update_fields=["resolution", "aspect_ratio"])
    return user


def parse_options(prompt: str) -> tuple[str, str | None, str | None]:
    """Pull inline options (`--ar 16:9`, `--4k`) out of a prompt: (prompt, resolution, aspect_ratio)."""
    resolution: str | None = None
    aspect_ratio: str | None = None
    for match in OPTION.finditer(prompt):
        if match["size"]:
            resolution = match["size"].upper()
        elif match["ratio"] in ASPECT_RATIOS:
            aspect_ratio = match["ratio"]
        else:
            raise Refusal(ErrorCode.ASPECT_RATIO, value=match["ratio"], choices=", ".join(ASPECT_RATIOS))
    return moderation.trim(" ".join(OPTION.sub(" ", prompt).split())), resolution, aspect_ratio


def nearest_ratio(width: float, height: float) -> str:
    """The supported aspect ratio closest to width:height."""
    ratio = width / height

    def distance(choice: str) -> float:
        w, h = map(int, choice.split(":"))
        return abs(math.log(ratio * h / w))

    return min(ASPECT_RATIOS, key=distance)


def request(
    *,
    identity: Identity,
    chat_id: int,
    prompt: str,
    message_id: int | None = None,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    references: Sequence[str] = (),
    reply_to: int | None = None,
    shape: tuple[int, int] | None = None,
    count: int = 1,
    taken: bool = False,
) -> list[Generation]:
    """Validate, moderate and reserve quota for `count` images of one request; the queued
    Generations, or Refusal.

    `references` are Telegram file_ids of the user's photos, `shape` the first one's (width,
    height) when known: an edit keeps its photo's shape unless the prompt asks for a ratio.
    `reply_to` is the id of the message the prompt answers when that message carries a photo: one
    of our results is refined from its own turn, any other photo is edited like an attachment.
    With `taken`, this process runs the job at once: the Generations are made running (see `_queue`).
    """
    user = identity.touch()
    if not 1 <= count <= MAX_BATCH:
        raise Refusal(ErrorCode.BATCH_SIZE, maximum=MAX_BATCH)
    # NUL can't be stored in PostgreSQL text, and means nothing in a prompt.
    prompt, inline_resolution, inline_ratio = parse_options(prompt.replace("\x00", "").strip())
    parent = None
    if reply_to:
        parent = _result_in_chat(chat_id, reply_to)
        if parent is not None:
            references = ()  # the result itself goes in as the model's earlier turn
    if len(references) > MAX_REFERENCES:
        raise Refusal(ErrorCode.TOO_MANY_PHOTOS, maximum=MAX_REFERENCES)
    kind = Generation.Kind.REFINE if parent else Generation.Kind.EDIT if references else Generation.Kind.TEXT
    return _queue(
        user,
        chat_id=chat_id,
        request_message_id=message_id,
        prompt=prompt,
        resolution=inline_resolution or resolution or user.resolution,
        aspect_ratio=inline_ratio or aspect_ratio or _natural_ratio(user, parent, shape if references else None),
        references=list(references),
        reference_count=len(references),
        kind=kind,
        parent=parent,
        count=count,
        taken=taken,
    )


def _natural_ratio(user: TelegramUser, parent: Generation | None, shape: tuple[int, int] | None) -> str:
    """The ratio a request gets when it doesn't ask: a refinement keeps its result's, an edit its
    photo's, anything else the user's default."""
    if parent:
        return parent.aspect_ratio
    return nearest_ratio(*shape) if shape else user.aspect_ratio


def follow_up(
    *, identity: Identity, generation_id: int, action: str, message_id: int | None = None, taken: bool = False
) -> Generation:
    """Regenerate, vary or upscale one of this user's results: the queued Generation, or Refusal."""
    user = identity.touch()
    source = result_of(user, generation_id)
    fields: dict[str, Any] = {
        "chat_id": source.chat_id,
        "request_message_id": message_id,
        "prompt": source.prompt,
        "resolution": source.resolution,
        "aspect_ratio": source.aspect_ratio,
        "references": source.references,
        "reference_count": source.reference_count,
        "kind": action,
        "parent": source,
    }
    if action == Generation.Kind.UPSCALE:
        if source.resolution == Resolution.R4K:
            raise Refusal(ErrorCode.ALREADY_4K)
        fields.update(resolution=Resolution.R4K, references=[], reference_count=0)
    elif action == Generation.Kind.VARIATION:
        fields.update(references=[], reference_count=0)
    (generation,) = _queue(user, taken=taken, **fields)
    return generation


def original_of(*, identity: Identity, generation_id: int) -> Generation:
    """One of this user's results, for sending its original file; Refusal when it is gone."""
    return result_of(identity.touch(), generation_id)


def claim_undelivered(*, identity: Identity, generation_id: int) -> Generation:
    """One of this user's results that was made but couldn't be sent, taken to be sent now: marked
    delivered at once (not charged: its quota was released), so a second press can't send it twice.
    Refusal when it was sent already, or is gone."""
    user = identity.touch()
    kept = Q(finished_at__gte=timezone.now() - timedelta(days=settings.RESULT_KEEP_DAYS)) & ~Q(original="")
    mine = Generation.objects.filter(pk=generation_id, user=user)
    if not mine.filter(kept, **UNDELIVERED).update(status=Generation.Status.DELIVERED, error_code=""):
        if mine.filter(status=Generation.Status.DELIVERED).exists():
            raise Refusal(ErrorCode.ALREADY_SENT)
        raise Refusal(ErrorCode.RESULT_GONE)
    return mine.select_related("user").get()


def shown_late(generation: Generation, **shown: object) -> None:
    Generation.objects.filter(pk=generation.pk).update(**shown)


def unclaim(generation: Generation) -> None:
    """Give back a claimed result that still couldn't be sent, to be tried again."""
    Generation.objects.filter(pk=generation.pk, status=Generation.Status.DELIVERED).update(**UNDELIVERED)


def result_of(user: TelegramUser, generation_id: int) -> Generation:
    """One of `user`'s delivered results that can still be built on, or Refusal."""
    generation = (
        Generation.objects.filter(pk=generation_id, user=user, status=Generation.Status.DELIVERED)
        .select_related("parent")
        .first()
    )
    if generation is None:
        raise Refusal(ErrorCode.RESULT_GONE)
    assert generation.finished_at is not None  # finish() dates every generation it closes
    if generation.finished_at < timezone.now() - timedelta(days=settings.RESULT_KEEP_DAYS):
        raise Refusal(ErrorCode.RESULT_GONE)
    return generation


def _result_in_chat(chat_id: int, message_id: int) -> Generation | None:
    """Our result shown in this message: its photo, or the original file that followed it."""
    shown = Q(result_message_id=message_id) | Q(document_message_id=message_id)
    return (
        Generation.objects.filter(shown, chat_id=chat_id, status=Generation.Status.DELIVERED)
        .select_related("parent")
        .first()
    )


def _queue(
    user: TelegramUser,
    *,
    prompt: str,
    resolution: str,
    aspect_ratio: str,
    count: int = 1,
    taken: bool = False,
    **fields: Any,
) -> list[Generation]:
    if moderation.visible_length(prompt) < MIN_PROMPT_CHARS:
        raise Refusal(ErrorCode.PROMPT_TOO_SHORT, minimum=MIN_PROMPT_CHARS)
    if len(prompt) > MAX_PROMPT_CHARS:
        raise Refusal(ErrorCode.PROMPT_TOO_LONG, maximum=MAX_PROMPT_CHARS)
    ban = moderation.active_ban(user)
    if ban:
        raise Refusal(ErrorCode.BANNED, reason=ban.reason, until=ban.expires_at)
    log_fields = {
        "user": user,
        "tier": user.tier.name,
        "prompt": prompt,
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
        "model": settings.IMAGE_MODEL,
        **fields,
    }
    keyword = moderation.matching_keyword(prompt)
    if keyword:
        Generation.objects.create(
            **log_fields, status=Generation.Status.REFUSED, error_code=ErrorCode.BANNED_KEYWORD, error_message=keyword
        )
        raise Refusal(ErrorCode.BANNED_KEYWORD)
    if not user.tier.allows(resolution):
        raise Refusal(ErrorCode.RESOLUTION, resolution=resolution, maximum=user.tier.max_resolution)
    with transaction.atomic():
        # The reservation checks the tier's rules and locks the user's quota row until commit, so the
        # same user's parallel messages are decided one at a time, each seeing the others'.
        # One moment: the quota day charged is the day the generation is logged on, even at midnight.
        now = timezone.now()
        day = days.today(now)
        held = _reserve(user, day, count, now)
        batch_key = uuid.uuid4().hex if count > 1 else ""
        # A job this process runs at once is made running, leased to it: no second statement to start it.
        running = {"status": Generation.Status.RUNNING, "started_at": now, "runner": runner(), "attempts": 1}
        lease = {**running, "lease_until": lease_end()} if taken else {}
        # The day's free images first, then the credits held for the rest.
        paid_with = [None] * (count - len(held)) + held
        return [
            Generation.objects.create(
                **log_fields, quota_day=day, created_at=now, batch_key=batch_key, credit=credit, **lease
            )
            for credit in paid_with
        ]


def _reserve(user: TelegramUser, day: date, count: int, now: datetime) -> list[LedgerEntry]:
    """Reserve one job of `count` images for `user`: the day's free images first, then credits for the
    rest (the credits held, one each). Refusal naming the rule of their tier that refuses."""
    for _ in range(2):  # a rule that refused may pass a moment later, when one of the user's jobs ends
        if quota.reserve(user, day, count, now):
            return []
        short = quota.shortfall(user, day, count, now)
        if short is None:
            continue
        if short.rule == "quota":
            paid = count - short.remaining
            if user.credits < paid:
                have = short.remaining + user.credits
                if count > 1 and have:
                    raise Refusal(ErrorCode.QUOTA_FOR_BATCH, count=count, remaining=have)
                raise Refusal(ErrorCode.QUOTA, limit=user.tier.daily_limit, buy=payments.selling())
            # The job's slot, its cooldown and the free images left, then credits for the rest: both or
            # neither (a Refusal rolls the transaction back).
            if quota.reserve(user, day, short.remaining, now):
                held = credits.hold(user, paid, now)
                if held is None:  # taken meanwhile by a request of theirs elsewhere
                    raise Refusal(ErrorCode.QUOTA, limit=user.tier.daily_limit, buy=payments.selling())
                return held
            continue
        if short.rule == "cooldown":
            raise Refusal(ErrorCode.COOLDOWN, seconds=short.seconds)
        break
    raise Refusal(ErrorCode.BUSY, limit=user.tier.max_concurrent_jobs)


def cancel_queued(telegram_id: int) -> list[Generation]:
    """Close this user's generations that no process has started, releasing their quota; returns them.
    A job whose rows are closed here finds nothing to take when its turn comes (start() says False)."""
    queued = Generation.objects.filter(user__telegram_id=telegram_id, status=Generation.Status.QUEUED)
    return [
        generation
        for generation in queued
        if finish(
            generation, Generation.Status.FAILED, error_code=ErrorCode.CANCELLED, error_message="stopped by the user"
        )
    ]


def running_count(telegram_id: int) -> int:
    """How many of this user's generations are being made (here or in another process)."""
    return Generation.objects.filter(user__telegram_id=telegram_id, status=Generation.Status.RUNNING).count()


def runner() -> str:
    """This process's name on the jobs it runs: host, pid and a random part (a pid is reused)."""
    global _runner
    if _runner is None or _runner[0] != os.getpid():  # a forked Celery child is a runner of its own
        _runner = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _runner[1]


_runner: tuple[int, str] | None = None  # (pid, name)


def lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def start(generation: Generation, status_message_id: int | None = None, *, takeover: bool = False) -> bool:
    """Move a queued generation to running, leased to this process; False when it is not queued
    (already taken, or finished).

    With `takeover` (a Celery task, which its broker may deliver again after a worker died), a
    running job whose lease ran out is taken over too, up to MAX_ATTEMPTS runs.
    """
    now = timezone.now()
    fields = {"status": Generation.Status.RUNNING, "started_at": now, "runner": runner(), "lease_until": lease_end()}
    if status_message_id:
        fields["status_message_id"] = status_message_id
    takeable = Q(status=Generation.Status.QUEUED)
    if takeover:
        takeable |= Q(status=Generation.Status.RUNNING, lease_until__lt=now)
    taken = Generation.objects.filter(takeable, pk=generation.pk, attempts__lt=MAX_ATTEMPTS).update(
        attempts=F("attempts") + 1, **fields
    )
    if not taken:
        return False
    for name, value in fields.items():
        setattr(generation, name, value)
    return True


def is_mine(generation: Generation) -> bool:
    """Whether this process runs the generation already (made running for it by `request`)."""
    return generation.status == Generation.Status.RUNNING and generation.runner == runner()


_status_messages: dict[int, int] = {}  # generation id -> its status message, not stored yet
_status_messages_lock = threading.Lock()


def note_status_message(generation_ids: Iterable[int], message_id: int) -> None:
    """Remember a running job's status message; `store_status_messages` writes it (the sweeper needs it
    should this process die)."""
    with _status_messages_lock:
        _status_messages.update(dict.fromkeys(generation_ids, message_id))


def store_status_messages() -> int:
    """Write the status messages noted since the last call, in one statement; how many."""
    with _status_messages_lock:
        noted = dict(_status_messages)
        _status_messages.clear()
    if not noted:
        return 0
    message_id = Case(*(When(pk=pk, then=Value(message)) for pk, message in noted.items()))
    return Generation.objects.filter(pk__in=noted, status__in=Generation.OPEN).update(status_message_id=message_id)


def renew_leases() -> int:
    """Keep this process's running jobs leased: a job whose lease runs out is taken for abandoned."""
    return Generation.objects.filter(runner=runner(), status=Generation.Status.RUNNING).update(lease_until=lease_end())


def held_elsewhere(generation_ids: Iterable[int]) -> datetime | None:
    """When the longest live lease on these jobs held by another process ends, or None if none is."""
    live = Q(pk__in=generation_ids, status=Generation.Status.RUNNING, lease_until__gte=timezone.now())
    return Generation.objects.filter(live).exclude(runner=runner()).aggregate(until=Max("lease_until"))["until"]


def finish(generation: Generation, status: str, charge: bool = True, **fields: Any) -> bool:
    """Close an open generation as delivered (charging its quota unless `charge` is False: an
    image from the cache is free) or failed (releasing it).

    Returns False when it was already closed, so a replay changes nothing.
    """
    with transaction.atomic():
        closed = Generation.objects.filter(pk=generation.pk, status__in=Generation.OPEN).update(
            status=status, finished_at=timezone.now(), **fields
        )
        if not closed:
            if fields.get("cost_usd"):  # closed meanwhile (expired), but the call was paid: log what it cost
                paid = {name: fields[name] for name in PAID_FIELDS if name in fields}
                Generation.objects.filter(pk=generation.pk).update(**paid)
            return False
        # Counted once the close is committed; a failing count is logged, never the job's failure.
        transaction.on_commit(lambda: metrics.generation_ended(generation, status, fields), robust=True)
        if status == Generation.Status.DELIVERED and fields.get("cache_key") and settings.RESULT_CACHE_SECONDS:
            key, pk = fields["cache_key"], generation.pk
            transaction.on_commit(lambda: cache.set(_cache_entry(key), pk, settings.RESULT_CACHE_SECONDS))
        if generation.quota_day is None:  # nothing was reserved for it: it was not queued by _queue
            return True
        # A batch's job is over with its last image, whichever that is: the quota row's lock, taken by
        # each image's commit or release, lets them look at the others one at a time.
        ends_job = not generation.batch_key
        free = 0 if generation.credit_id else 1  # made with a credit: the free images' count is untouched
        if status == Generation.Status.DELIVERED and charge:
            quota.commit(generation.user_id, generation.quota_day, free, ends_job=ends_job)
            if generation.credit_id:
                credits.settle(generation.credit_id)
        else:
            quota.release(generation.user_id, generation.quota_day, free, ends_job=ends_job)
            if generation.credit_id:
                credits.release(generation.credit_id)
        open_in_batch = Generation.objects.filter(batch_key=generation.batch_key, status__in=Generation.OPEN)
        if not ends_job and not open_in_batch.exists():
            quota.end_job(generation.user_id, generation.quota_day)
    return True


def cached_id(key: str) -> int | None:
    """The id of the result that answered the same request (see `cached`), if one may have.

    Looked up in the cache (CACHE_URL: shared by every process when it is Redis), not the database: a
    request not seen before, the usual case, costs no query."""
    return cache.get(_cache_entry(key)) if settings.RESULT_CACHE_SECONDS else None


def cached(pk: int) -> Generation | None:
    """Result `pk` (from `cached_id`), when it can still answer: delivered within RESULT_CACHE_SECONDS,
    in a form the delivery mode sends."""
    since = timezone.now() - timedelta(seconds=settings.RESULT_CACHE_SECONDS)
    hits = Generation.objects.filter(pk=pk, status=Generation.Status.DELIVERED, finished_at__gte=since)
    # What the delivery mode sends must exist: a photo-only result can't answer in document mode.
    hits = hits.exclude(file_id="") if delivery_mode.parts().photo else hits.exclude(document_file_id="")
    return hits.order_by("-finished_at").first()


def _cache_entry(key: str) -> str:
    return f"botcore:result:{key}"


def expire_stale() -> list[Generation]:
    """Fail the generations a crashed bot or worker left open, giving their quota back; returns them.

    A running job is abandoned once its lease runs out (its runner renews it every few seconds); a
    queued one, and one started before leases existed, after STALE_GENERATION_SECONDS.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.STALE_GENERATION_SECONDS)
    # A dead Celery worker's job comes back with its message, and is taken over as soon as its
    # lease ends: it gets one more lease for that before it is given up.
    grace = timedelta(seconds=settings.JOB_LEASE_SECONDS if settings.CELERY_BROKER_URL else 0)
    # A running job counts from its start: time spent waiting in a busy Celery queue is not a crash.
    left_open = (
        Q(status=Generation.Status.QUEUED, created_at__lt=cutoff)
        | Q(status=Generation.Status.RUNNING, lease_until__lt=now - grace)
        | Q(status=Generation.Status.RUNNING, lease_until=None, started_at__lt=cutoff)
    )
    stale = Generation.objects.filter(left_open).select_related("user")
    return [
        generation
        for generation in stale
        if finish(
            generation, Generation.Status.FAILED, error_code=ErrorCode.INTERRUPTED, error_message="left unfinished"
        )
    ]


def account(identity: Identity) -> tuple[TelegramUser, int | None]:
    """The user (registered on first contact) and the images they have left today (None: unlimited)."""
    user = identity.touch()
    return user, quota.remaining(user)
