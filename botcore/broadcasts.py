"""Sending a staff broadcast: within Telegram's limits, with progress saved as it goes, and users
who blocked the bot marked inactive so later broadcasts skip them."""

import asyncio
import logging
import threading

from asgiref.sync import sync_to_async
from django import db
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from telegram import Bot
from telegram.error import Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import ExtBot

from accounts import staff
from accounts.models import Broadcast, TelegramUser, Tier

from . import connections
from .telegram import dispatch, outbound
from .telegram.transport import bot_request

log = logging.getLogger(__name__)

MAX_CHARS = 4096

BATCH = 100  # recipients read per query, and progress saved after each


def start(*, actor: User, text: str, tier: Tier | None = None) -> Broadcast:
    """Queue a broadcast (recorded in the audit log) and hand it to a background job."""
    text = text.strip()
    if not text:
        raise staff.StaffError(_("Write the message to send."), "text")
    if len(text) > MAX_CHARS:
        raise staff.StaffError(_("Telegram messages hold at most %(count)d characters.") % {"count": MAX_CHARS}, "text")
    with transaction.atomic():
        # Locked, so the tier can't be deleted between here and the commit (staff.delete_tier).
        if tier is not None:
            tier = Tier.objects.select_for_update().filter(pk=tier.pk).first()
            if tier is None:
                raise staff.StaffError(_("That tier has just been deleted."), "tier")
        broadcast = Broadcast.objects.create(text=text, tier=tier, audience=tier.name if tier else "", created_by=actor)
        staff.record(actor, "broadcast.start", broadcast, {}, {"tier": tier.name if tier else "everyone", "text": text})
        transaction.on_commit(lambda: _in_background(broadcast.pk))
    return broadcast


def _in_background(broadcast_id: int) -> None:
    """Send it from a Celery worker when a broker is configured, else from a thread here."""
    if settings.CELERY_BROKER_URL:
        dispatch.publish(dispatch.BROADCAST_TASK, broadcast_id)
        return
    threading.Thread(target=_send_here, args=(broadcast_id,), name=f"broadcast-{broadcast_id}", daemon=True).start()


def _send_here(broadcast_id: int) -> None:
    async def send_and_close() -> None:
        try:
            await send(broadcast_id)
        finally:
            # Its queries ran in asgiref's one thread for sync code, not this one: close the connection there.
            await sync_to_async(db.connections.close_all)()

    asyncio.run(send_and_close())


async def send(broadcast_id: int, bot: Bot | None = None) -> Broadcast:
    """Send broadcast `broadcast_id` to its recipients; returns it, finished."""
    await sync_to_async(connections.make_usable)()
    taken = await Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.QUEUED).aupdate(
        status=Broadcast.Status.SENDING
    )
    broadcast = await Broadcast.objects.aget(pk=broadcast_id)
    if not taken:
        return broadcast
    failure: Broadcast.Failure | None = None
    try:
        bot = bot or _bot()
        async with bot:
            await _send_all(bot, broadcast)
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
    await Broadcast.objects.filter(pk=broadcast_id).aupdate(
        status=Broadcast.Status.FAILED if failure else Broadcast.Status.DONE,
        failure=failure or "",
        finished_at=timezone.now(),
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


async def _send_all(bot: Bot, broadcast: Broadcast) -> None:
    recipients = broadcast.recipients().order_by("pk").values_list("pk", "telegram_id")
    await Broadcast.objects.filter(pk=broadcast.pk).aupdate(total=await recipients.acount())
    after = 0
    while batch := [row async for row in recipients.filter(pk__gt=after)[:BATCH]]:
        counts, blocked = {"sent": 0, "failed": 0}, []
        for user_pk, telegram_id in batch:
            try:
                await bot.send_message(telegram_id, broadcast.text)
                counts["sent"] += 1
            except Forbidden:  # blocked the bot, or deleted their account
                blocked.append(user_pk)
            except TelegramError as exc:
                log.info("broadcast %s not sent to %s: %s", broadcast.pk, telegram_id, exc)
                counts["failed"] += 1
        await sync_to_async(_save_progress)(broadcast.pk, counts, blocked)
        after = batch[-1][0]
        await sync_to_async(connections.make_usable)()  # a long broadcast outlives a database restart


def _save_progress(broadcast_pk: int, counts: dict[str, int], blocked: list[int]) -> None:
    TelegramUser.objects.filter(pk__in=blocked).update(is_active=False)
    Broadcast.objects.filter(pk=broadcast_pk).update(
        sent=F("sent") + counts["sent"], failed=F("failed") + counts["failed"], blocked=F("blocked") + len(blocked)
    )
