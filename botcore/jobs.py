"""The one generation pipeline: start -> provider -> deliver -> finish, with the user told either way.

It runs as an asyncio task inside the bot, or in a Celery worker (tasks.py); both call
`run_generation`. Quota was reserved when the request was accepted (generations.request);
here it is committed only once the photo reached the user, and released on any failure.
"""

import asyncio
import logging
import time
from contextlib import suppress

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError

from . import generations
from .models import Generation
from .providers import ImageRequest, ProviderError, open_provider
from .telegram import delivery, texts
from .telegram.transport import bot_request

log = logging.getLogger(__name__)

ADMIN_ALERT_EVERY_SECONDS = 600


async def run_generation(generation, *, bot, provider, status_message_id=None):
    started = time.monotonic()
    if not await sync_to_async(generations.start)(generation, status_message_id):
        log.info("generation %s is not queued any more; skipped", generation.pk)
        return
    try:
        await _run(generation, bot, provider, started)
    except Exception:
        log.exception("generation %s crashed", generation.pk)
        await _fail(bot, generation, "internal", "unexpected error")


async def _run(generation, bot, provider, started):
    request = ImageRequest(generation.prompt, generation.resolution, generation.aspect_ratio)
    try:
        async with delivery.chat_action(bot, generation.chat_id):
            result = await provider.generate(request)
    except ProviderError as exc:
        log.warning("generation %s failed upstream: %s", generation.pk, exc)
        await _fail(bot, generation, exc.code, exc.detail, provider=provider.name)
        if exc.code == ProviderError.OPERATOR:
            await notify_admins(bot, exc)
        return
    paid = {
        "provider": result.provider,
        "model": result.model,
        "upstream_latency_ms": result.upstream_ms,
        "cost_usd": generations.price(result.model, generation.resolution),
    }
    try:
        photo_id, document_id = await delivery.deliver(
            bot,
            generation.chat_id,
            result.file,
            caption=texts.caption(generation.prompt, generation.resolution, generation.aspect_ratio),
            reply_to=generation.request_message_id,
            stem=f"nanobot-{generation.pk}",
        )
    except (TelegramError, delivery.UnreadableImage) as exc:
        log.warning("generation %s not delivered: %s", generation.pk, exc)
        code = "no_image" if isinstance(exc, delivery.UnreadableImage) else "delivery"
        await _fail(bot, generation, code, str(exc), **paid)
        return
    finally:
        result.close()
    await sync_to_async(generations.finish)(
        generation,
        Generation.Status.DELIVERED,
        file_id=photo_id,
        document_file_id=document_id,
        total_latency_ms=_ms_since(started),
        **paid,
    )
    await _remove_status(bot, generation)


async def _fail(bot, generation, code, detail, **fields):
    closed = await sync_to_async(generations.finish)(
        generation, Generation.Status.FAILED, error_code=code, error_message=detail[:1000], **fields
    )
    if closed:  # else it was already finished (delivered, or expired) and the user has heard about it
        await tell_failure(bot, generation, code)


async def tell_failure(bot, generation, code):
    """Turn the status message into the failure's explanation, or say it anew if that message is gone."""
    text = texts.failure(generation.user.language_code, code)
    try:
        if generation.status_message_id:
            await bot.edit_message_text(
                text, chat_id=generation.chat_id, message_id=generation.status_message_id, parse_mode=ParseMode.HTML
            )
            return
    except Forbidden:  # the user blocked the bot
        return
    except TelegramError as exc:  # the status message is gone, or Telegram didn't answer: say it anew
        log.info("status message of generation %s not edited: %s", generation.pk, exc)
    with suppress(TelegramError):
        await bot.send_message(generation.chat_id, text, parse_mode=ParseMode.HTML)


async def expire_stale(bot):
    """Fail the jobs a crashed bot or worker left open, give their quota back and tell their users."""
    expired = await sync_to_async(generations.expire_stale)()
    for generation in expired:
        await tell_failure(bot, generation, "interrupted")
    return len(expired)


async def sweep_stale_forever(bot, every_seconds=60):
    while True:
        try:
            expired = await expire_stale(bot)
            if expired:
                log.warning("released the quota of %d generations left unfinished", expired)
        except Exception:
            log.exception("sweeping stale generations failed")
        await asyncio.sleep(every_seconds)


async def _remove_status(bot, generation):
    if generation.status_message_id:
        with suppress(TelegramError):
            await bot.delete_message(generation.chat_id, generation.status_message_id)


async def notify_admins(bot, error):
    """Tell the operators about a problem only they can fix, at most once per ten minutes."""
    if not settings.ADMIN_TELEGRAM_IDS or not cache.add("admin-alert:provider", 1, ADMIN_ALERT_EVERY_SECONDS):
        return
    text = texts.say("en", texts.ADMIN_ALERT, detail=error.detail[:300])
    for admin_id in settings.ADMIN_TELEGRAM_IDS:
        with suppress(TelegramError):
            await bot.send_message(admin_id, text, parse_mode=ParseMode.HTML)


async def run_generation_standalone(generation_id, status_message_id=None):
    """Run one job outside the bot process (a Celery worker), with its own Bot and HTTP clients."""
    bot = Bot(
        settings.TELEGRAM_BOT_TOKEN,
        base_url=settings.TELEGRAM_BASE_URL,
        base_file_url=settings.TELEGRAM_BASE_FILE_URL,
        request=bot_request(),
    )
    generation = await Generation.objects.select_related("user").filter(pk=generation_id).afirst()
    if generation is None:
        log.warning("generation %s does not exist; skipped", generation_id)
        return
    async with bot, open_provider() as provider:
        await run_generation(generation, bot=bot, provider=provider, status_message_id=status_message_id)


def _ms_since(started):
    return int((time.monotonic() - started) * 1000)
