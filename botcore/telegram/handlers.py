"""Thin async handlers: read the update, call the services, answer. No decisions here."""

import logging

from asgiref.sync import sync_to_async
from telegram.constants import ParseMode
from telegram.error import TelegramError

from accounts.models import Resolution
from botcore import dispatch, generations, jobs
from botcore.models import Generation

from . import texts

log = logging.getLogger(__name__)


def identity(update):
    user = update.effective_user
    return generations.Identity(
        telegram_id=user.id,
        username=user.username or "",
        first_name=user.first_name or "",
        language_code=user.language_code or "",
    )


async def start(update, context):
    who = identity(update)
    user, remaining = await sync_to_async(generations.account)(who)
    await update.effective_message.reply_html(
        texts.say(
            who.language_code,
            texts.WELCOME,
            name=user.first_name,
            tier=user.tier.name,
            quota=texts.quota_summary(who.language_code, remaining, user.tier.daily_limit),
        )
    )


async def help_command(update, context):
    await update.effective_message.reply_html(texts.say(identity(update).language_code, texts.HELP))


async def quota_command(update, context):
    who = identity(update)
    user, remaining = await sync_to_async(generations.account)(who)
    await update.effective_message.reply_html(
        texts.say(
            who.language_code,
            texts.QUOTA,
            tier=user.tier.name,
            resolution=user.tier.max_resolution,
            quota=texts.quota_summary(who.language_code, remaining, user.tier.daily_limit),
        )
    )


async def generate_command(update, context):
    await _generate_from_command(update, context, Resolution.R2K)


async def hd_command(update, context):
    await _generate_from_command(update, context, Resolution.R4K)


async def _generate_from_command(update, context, resolution):
    message = update.effective_message
    command, *prompt = message.text.split(maxsplit=1)
    if not prompt:
        name = command.lstrip("/").split("@")[0]
        await message.reply_html(texts.say(identity(update).language_code, texts.MISSING_PROMPT, command=name))
        return
    await submit(update, context, prompt[0], resolution=resolution)


async def text_message(update, context):
    await submit(update, context, update.effective_message.text)


async def submit(update, context, prompt, resolution=None):
    """Accept (or refuse) one image request, show the status message and hand the job over."""
    message = update.effective_message
    who = identity(update)
    try:
        generation = await sync_to_async(generations.request)(
            identity=who,
            chat_id=message.chat_id,
            prompt=prompt,
            resolution=resolution,
            message_id=message.message_id,
        )
    except generations.Refusal as refusal:
        await message.reply_html(texts.refusal(who.language_code, refusal))
        return
    try:
        status = await message.reply_text(
            texts.say(
                who.language_code,
                texts.WORKING,
                resolution=generation.resolution,
                aspect_ratio=generation.aspect_ratio,
            ),
            parse_mode=ParseMode.HTML,
        )
    except TelegramError as exc:  # can't reach the chat: give the reservation back
        log.warning("status message for generation %s not sent: %s", generation.pk, exc)
        await sync_to_async(generations.finish)(
            generation, Generation.Status.FAILED, error_code="delivery", error_message=str(exc)
        )
        return
    try:
        await dispatch.submit(context.application, generation, status.message_id)
    except Exception:  # e.g. the Celery broker is down: the job never started, so nothing is owed
        log.exception("generation %s could not be handed over", generation.pk)
        await sync_to_async(generations.finish)(
            generation, Generation.Status.FAILED, error_code="internal", error_message="job not queued"
        )
        generation.status_message_id = status.message_id
        await jobs.tell_failure(context.bot, generation, "internal")


async def unsupported(update, context):
    """Anything else in a private chat (a sticker, a voice note, an unknown command) gets a hint."""
    await update.effective_message.reply_html(texts.say(identity(update).language_code, texts.UNSUPPORTED))


async def on_error(update, context):
    """Last resort: log the crash and tell the user something went wrong, instead of silence."""
    log.error("unhandled error in an update handler", exc_info=context.error)
    message = getattr(update, "effective_message", None)
    if message is not None:
        lang = update.effective_user.language_code if update.effective_user else ""
        try:
            await message.reply_html(texts.say(lang, texts.INTERNAL))
        except TelegramError:
            pass
