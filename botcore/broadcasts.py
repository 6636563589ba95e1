"""Sending a staff broadcast: within Telegram's limits, with its progress and the users it did not reach saved
as it goes, users who blocked the bot marked inactive so later broadcasts skip them, and where it stands told in
words (`progress`), so that a send whose process died, or that waits for a worker, says so and can go on."""

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django import db
from django.conf import settings
from django.contrib.auth.models import User
from django.db import models, transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError
from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import ExtBot

from accounts import staff
from accounts.models import Broadcast, FailedRecipient, TelegramUser, Tier

from . import connections, heartbeats
from .models import Heartbeat
from .telegram import dispatch, outbound
from .telegram.transport import bot_request

log = logging.getLogger(__name__)

MAX_CHARS = 4096

BATCH = 100  # recipients read per query, and progress saved after each
# A batch takes seconds, even when it shares Telegram's limits with image results: a broadcast whose progress
# has not moved for this long has lost the process that was sending it.
STALLED_AFTER = timedelta(minutes=5)


def checked_text(text: str) -> str:
    """The message as it will be sent (Telegram drops the spaces around it), or StaffError."""
    text = text.strip()
    if not text:
        raise staff.StaffError(_("Write the message to send."), "text")
    if len(text) > MAX_CHARS:
        raise staff.StaffError(_("Telegram messages hold at most %(count)d characters.") % {"count": MAX_CHARS}, "text")
    return text


@dataclass(frozen=True)
class Audience:
    count: int  # who it goes to
    skipped: int  # who blocked the bot: not sent to


def audience(tier: Tier | None) -> Audience:
    """Who a broadcast to `tier` (None: everyone) would reach now."""
    users = TelegramUser.objects.filter(tier=tier) if tier else TelegramUser.objects.all()
    counts = users.aggregate(
        count=Count("pk", filter=Q(is_active=True)), skipped=Count("pk", filter=Q(is_active=False))
    )
    return Audience(counts["count"], counts["skipped"])


def start(*, actor: User, text: str, tier: Tier | None = None) -> Broadcast:
    """Queue a broadcast (recorded in the audit log) and hand it to a background job."""
    text = checked_text(text)
    with transaction.atomic():
        # Locked, so the tier can't be deleted between here and the commit (staff.delete_tier).
        if tier is not None:
            tier = Tier.objects.select_for_update().filter(pk=tier.pk).first()
            if tier is None:
                raise staff.StaffError(_("That tier has just been deleted."), "tier")
        broadcast = Broadcast(text=text, tier=tier, audience=tier.name if tier else "", created_by=actor)
        broadcast.total = broadcast.recipients().count()
        broadcast.save()
        staff.record(actor, "broadcast.start", broadcast, {}, {"tier": tier.name if tier else "everyone", "text": text})
        _hand_over(broadcast)
    return broadcast


def resume(*, actor: User, broadcast_id: int) -> Broadcast:
    """Send a broadcast that failed or stopped on to the users after the last one it went through."""
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
        if not progress(broadcast).can_resume:
            raise staff.StaffError(_("Only a broadcast that failed or stopped can be sent on."))
        broadcast.status, broadcast.failure, broadcast.finished_at = Broadcast.Status.QUEUED, "", None
        broadcast.updated_at = timezone.now()
        broadcast.save(update_fields=["status", "failure", "finished_at", "updated_at"])
        gone_through = broadcast.sent + broadcast.blocked + broadcast.failed
        staff.record(actor, "broadcast.resume", broadcast, {}, {"sent": broadcast.sent, "gone_through": gone_through})
        _hand_over(broadcast)
    return broadcast


def _hand_over(broadcast: Broadcast) -> None:
    # Without a token nothing can be sent: said at once, rather than by a job that may never run.
    if not settings.TELEGRAM_BOT_TOKEN:
        broadcast.status, broadcast.failure = Broadcast.Status.FAILED, Broadcast.Failure.NO_TOKEN
        broadcast.finished_at = broadcast.updated_at = timezone.now()
        broadcast.save(update_fields=["status", "failure", "finished_at", "updated_at"])
        return
    transaction.on_commit(lambda: _in_background(broadcast.pk))


def _in_background(broadcast_id: int) -> None:
    """Send it from a Celery worker when a broker is configured, else from a thread here."""
    if dispatch.runs_here():
        threading.Thread(target=_send_here, args=(broadcast_id,), name=f"broadcast-{broadcast_id}", daemon=True).start()
        return
    try:
        dispatch.publish(dispatch.BROADCAST_TASK, broadcast_id)
    except BrokerError as exc:
        log.warning("broadcast %s not queued: %s", broadcast_id, exc)
        now = timezone.now()
        Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.QUEUED).update(
            status=Broadcast.Status.FAILED, failure=Broadcast.Failure.QUEUE_UNREACHABLE, finished_at=now, updated_at=now
        )


def _send_here(broadcast_id: int) -> None:
    async def send_and_close() -> None:
        try:
            await send(broadcast_id)
        finally:
            # Its queries ran in asgiref's one thread for sync code, not this one: close the connection there.
            await sync_to_async(db.connections.close_all)()

    asyncio.run(send_and_close())


class Replaced(Exception):
    """Another process has taken the broadcast over (it was sent on after this one stalled)."""


async def send(broadcast_id: int, bot: Bot | None = None) -> Broadcast:
    """Send broadcast `broadcast_id` to its recipients, after the last one it went through before; returns it,
    finished."""
    await sync_to_async(connections.make_usable)()
    now = timezone.now()
    taken = await Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.QUEUED).aupdate(
        status=Broadcast.Status.SENDING,
        run=F("run") + 1,
        started_at=Coalesce("started_at", models.Value(now, models.DateTimeField())),
        updated_at=now,
    )
    broadcast = await Broadcast.objects.aget(pk=broadcast_id)
    if not taken:
        return broadcast
    mine = Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.SENDING, run=broadcast.run)
    failure: Broadcast.Failure | None = None
    try:
        bot = bot or _bot()
        async with bot:
            await _send_all(bot, broadcast, mine)
    except Replaced:
        log.warning("broadcast %s: left to the process that took it over", broadcast_id)
        return await Broadcast.objects.aget(pk=broadcast_id)
    except InvalidToken:  # its message may quote the token: never logged
        failure = Broadcast.Failure.TOKEN_REJECTED if settings.TELEGRAM_BOT_TOKEN else Broadcast.Failure.NO_TOKEN
    except NetworkError as exc:
        log.warning("broadcast %s stopped: %s", broadcast_id, exc)
        failure = Broadcast.Failure.UNREACHABLE
    except Exception:
        log.exception("broadcast %s stopped", broadcast_id)
        failure = Broadcast.Failure.ERROR
    if failure:
        log.warning("broadcast %s failed: %s", broadcast_id, failure.label)
    now = timezone.now()
    await mine.aupdate(
        status=Broadcast.Status.FAILED if failure else Broadcast.Status.DONE,
        failure=failure or "",
        finished_at=now,
        updated_at=now,
    )
    return await Broadcast.objects.aget(pk=broadcast_id)


def _bot() -> ExtBot[int]:
    # Paced under Telegram's limits; a 429 that comes anyway is waited out (outbound.py).
    return ExtBot(
        settings.TELEGRAM_BOT_TOKEN,
        base_url=settings.TELEGRAM_BASE_URL,
        request=bot_request(),
        rate_limiter=outbound.for_settings(),
    )


@dataclass
class _Batch:
    """What one batch did, saved in one write."""

    gone_through: int | None = None  # the last recipient (pk) sent to or failed
    sent: int = 0
    failed: int = 0
    blocked: list[int] = field(default_factory=list)
    failures: list[FailedRecipient] = field(default_factory=list)


async def _send_all(bot: Bot, broadcast: Broadcast, mine: "models.QuerySet[Broadcast]") -> None:
    recipients = broadcast.recipients().order_by("pk").values_list("pk", "telegram_id")
    after = broadcast.resume_after
    before = broadcast.sent + broadcast.blocked + broadcast.failed
    if not await mine.aupdate(total=before + await recipients.filter(pk__gt=after).acount()):
        raise Replaced
    while rows := [row async for row in recipients.filter(pk__gt=after)[:BATCH]]:
        batch = _Batch()
        try:
            for user_pk, telegram_id in rows:
                await _send_one(bot, broadcast, user_pk, telegram_id, batch)
                batch.gone_through = user_pk
        finally:  # also when Telegram stops answering halfway: sending the rest starts after the last one reached
            await sync_to_async(_save_progress)(mine, batch)
        after = rows[-1][0]
        await sync_to_async(connections.make_usable)()  # a long broadcast outlives a database restart


async def _send_one(bot: Bot, broadcast: Broadcast, user_pk: int, telegram_id: int, batch: _Batch) -> None:
    try:
        await bot.send_message(telegram_id, broadcast.text)
    except TelegramError as exc:
        if isinstance(exc, InvalidToken | NetworkError) and not isinstance(exc, BadRequest):
            raise  # the bot can reach no one: this user is tried again with the rest
        if isinstance(exc, Forbidden):  # blocked the bot, or deleted their account
            batch.blocked.append(user_pk)
        else:
            log.info("broadcast %s not sent to %s: %s", broadcast.pk, telegram_id, exc)
            batch.failed += 1
        batch.failures.append(
            FailedRecipient(broadcast=broadcast, user_id=user_pk, reason=_reason(exc), description=exc.message[:300])
        )
    else:
        batch.sent += 1


def _reason(exc: TelegramError) -> FailedRecipient.Reason:
    said = exc.message.lower()
    if isinstance(exc, Forbidden):
        return FailedRecipient.Reason.DEACTIVATED if "deactivated" in said else FailedRecipient.Reason.BLOCKED
    return FailedRecipient.Reason.CHAT_NOT_FOUND if "chat not found" in said else FailedRecipient.Reason.ERROR


def _save_progress(mine: "models.QuerySet[Broadcast]", batch: _Batch) -> None:
    if batch.gone_through is None:
        return
    with transaction.atomic():
        moved = mine.update(
            sent=F("sent") + batch.sent,
            failed=F("failed") + batch.failed,
            blocked=F("blocked") + len(batch.blocked),
            resume_after=batch.gone_through,
            updated_at=timezone.now(),
        )
        if not moved:
            raise Replaced
        TelegramUser.objects.filter(pk__in=batch.blocked).update(is_active=False)
        FailedRecipient.objects.bulk_create(batch.failures)


@dataclass(frozen=True)
class Progress:
    """Where a broadcast stands, as staff read it."""

    state: str  # queued, waiting (for a worker), sending, stopped, done or failed
    label: str  # the state in a word or two
    sentence: str  # what is happening and what to do about it; "" when all is well
    gone_through: int  # recipients sent to, or who failed
    can_resume: bool  # "Send the rest" goes on from the last user it went through
    going: bool  # still moving: its page follows it


def progress(broadcast: Broadcast, now: datetime | None = None) -> Progress:
    now = now or timezone.now()
    gone_through = broadcast.sent + broadcast.blocked + broadcast.failed

    def said(state: str, label: str, sentence: str = "", can_resume: bool = False, going: bool = False) -> Progress:
        return Progress(state, label, sentence, gone_through, can_resume, going)

    if broadcast.status == Broadcast.Status.DONE:
        return said("done", _("Done"))
    if broadcast.status == Broadcast.Status.FAILED:
        return said("failed", _("Failed"), str(broadcast.get_failure_display()), can_resume=True)
    queued = broadcast.status == Broadcast.Status.QUEUED
    if queued and waits_for_a_worker(now):
        sentence = _(
            "Waiting for a worker: none is running. It goes out as soon as one starts (celery -A nanobot_site worker)."
        )
        return said("waiting", _("Waiting for a worker"), sentence, going=True)
    if broadcast.updated_at < now - STALLED_AFTER:
        if queued:
            sentence = _(
                "It never started: the process that was to send it stopped, or its task was lost. "
                "Send the rest to queue it again."
            )
        else:
            sentence = _("Stopped: the process sending it died. Send the rest to go on after the last user it reached.")
        return said("stopped", _("Stopped"), sentence, can_resume=True)
    if queued:
        return said("queued", _("Queued"), _("Waiting to be taken by the process that sends it."), going=True)
    return said("sending", _("Sending"), going=True)


def waits_for_a_worker(now: datetime | None = None) -> bool:
    """Whether a broadcast queued now would wait: sent by Celery workers, and none is alive."""
    if dispatch.runs_here():
        return False
    return not any(p.kind == Heartbeat.Kind.WORKER and p.alive for p in heartbeats.processes(now))
