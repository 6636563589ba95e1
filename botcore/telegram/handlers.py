"""Thin async handlers: read the update, call the services, answer. No decisions here."""

import logging
from contextlib import suppress

from asgiref.sync import sync_to_async
from telegram.constants import ParseMode
from telegram.error import TelegramError

from accounts.models import Resolution
from botcore import buttons, generations
from botcore.errors import ErrorCode
from botcore.models import Generation

from . import albums, delivery, dispatch, files, jobs, keyboards, status, stopping, texts

log = logging.getLogger(__name__)


# Buttons that send a result's original file: the service that finds (or claims) it, and the sender.
FILE_SENDERS = {
    "original": (generations.original_of, delivery.send_original_of),
    "send": (generations.claim_undelivered, jobs.deliver_kept),
}


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


async def cancel_command(update, context):
    """Stop the images being made for this user; their quota comes back."""
    who = identity(update)
    stopped, still_coming = await stopping.stop_for(who.telegram_id)
    await update.effective_message.reply_html(texts.stopped(who.language_code, stopped, still_coming))


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


async def batch_command(update, context):
    message = update.effective_message
    lang = identity(update).language_code
    _, *rest = message.text.split(maxsplit=2)
    if len(rest) < 2 or not rest[0].isascii() or not rest[0].isdigit() or int(rest[0]) < 2:
        await message.reply_html(
            texts.refusal(lang, generations.Refusal(ErrorCode.BATCH_SIZE, maximum=generations.MAX_BATCH))
        )
        return
    await submit(update, context, rest[1], count=int(rest[0]))


async def text_message(update, context):
    message = update.effective_message
    replied = message.reply_to_message
    file_id = _image_file_id(replied) if replied else None
    if file_id:  # a prompt in reply to a photo: edit it, or refine it if it is one of our results
        await submit(
            update, context, message.text, references=[file_id], reply_to=replied.message_id, shape=_shape(replied)
        )
        return
    if replied and replied.document:  # meant as an input, but not one we can use
        await message.reply_html(texts.failure_reason(identity(update).language_code, ErrorCode.INPUT_NOT_IMAGE))
        return
    await submit(update, context, message.text)


async def image_message(update, context):
    """A photo, or an image sent as a file, alone or as part of an album; its caption is the prompt."""
    message = update.effective_message
    lang = identity(update).language_code
    document = message.document
    if document and document.mime_type not in files.MIME_TYPES.values():
        await message.reply_html(texts.failure_reason(lang, ErrorCode.INPUT_NOT_IMAGE))
        return
    if document and (document.file_size or 0) > files.DOWNLOAD_LIMIT:
        await message.reply_html(texts.failure_reason(lang, ErrorCode.INPUT_TOO_BIG))
        return
    if message.media_group_id:
        await _collect_album_part(update, context)
        return
    if not message.caption:
        await message.reply_html(texts.say(lang, texts.PHOTO_NEEDS_CAPTION))
        return
    await submit(update, context, message.caption, references=[_image_file_id(message)], shape=_shape(message))


async def _collect_album_part(update, context):
    """Album parts arrive as separate updates: the last part to arrive starts one job with all of them."""
    message = update.effective_message
    part = albums.Part(
        message.message_id, _image_file_id(message), _shape(message), update if message.caption else None
    )
    album = await albums.gathered(context.application, message.chat_id, message.media_group_id, part)
    if album is None:
        return
    if not album.caption:
        await message.reply_html(texts.say(identity(update).language_code, texts.PHOTO_NEEDS_CAPTION))
        return
    await submit(album.captioned, context, album.caption, references=album.references, shape=album.shape)


def _image_file_id(message):
    if message.photo:
        return message.photo[-1].file_id
    if message.document and message.document.mime_type in files.MIME_TYPES.values():
        return message.document.file_id
    return None


def _shape(message):
    """(width, height) of a photo, which Telegram tells; files don't say."""
    return (message.photo[-1].width, message.photo[-1].height) if message.photo else None


async def submit(update, context, prompt, **options):
    """Accept (or refuse) one image request, show the status message and hand the job over."""
    message = update.effective_message
    await _start(
        context,
        message,
        identity(update),
        lambda who: generations.request(
            taken=dispatch.runs_here(),
            identity=who,
            chat_id=message.chat_id,
            prompt=prompt,
            message_id=message.message_id,
            **options,
        ),
    )


async def _start(context, message, who, make):
    """Run `make(identity)` (a service call that queues Generations or refuses), then show the
    status message under `message` and hand the job over."""
    try:
        batch = await sync_to_async(make)(who)
    except generations.Refusal as refusal:
        await message.reply_html(texts.refusal(who.language_code, refusal))
        return
    if isinstance(batch, Generation):
        batch = [batch]
    first = batch[0]
    sending_status = status.send(
        message,
        texts.say(who.language_code, texts.WORKING, resolution=first.resolution, aspect_ratio=first.aspect_ratio),
    )
    try:
        await dispatch.submit(context.application, batch, sending_status)
    except Exception:  # e.g. the Celery broker is down: the job never started, so nothing is owed
        log.exception("generation %s could not be handed over", first.pk)
        for generation in batch:
            await sync_to_async(generations.finish)(
                generation, Generation.Status.FAILED, error_code=ErrorCode.INTERNAL, error_message="job not queued"
            )
        await jobs.tell_failure(context.bot, first, ErrorCode.INTERNAL)
        await status.settle(context.bot, first.chat_id, sending_status)


async def button_pressed(update, context):
    """A button under a result: Regenerate, Variation, 4K or Original."""
    query = update.callback_query
    who = identity(update)
    decoded = buttons.decode(query.data or "", who.telegram_id)
    if decoded is None:
        await query.answer(texts.say(who.language_code, texts.BUTTON_NOT_YOURS), show_alert=True)
        return
    await query.answer()
    action, generation_id = decoded
    message = query.message
    if action in FILE_SENDERS:  # a result sent as its original file: kept, or made but not delivered
        find, send = FILE_SENDERS[action]
        try:
            generation = await sync_to_async(find)(identity=who, generation_id=generation_id)
        except generations.Refusal as refusal:
            await message.reply_html(texts.refusal(who.language_code, refusal))
            return
        if not await send(context.bot, generation, reply_to=message.message_id):
            await message.reply_html(texts.say(who.language_code, texts.ORIGINAL_GONE))
        return
    await _start(
        context,
        message,
        who,
        lambda who: generations.follow_up(
            taken=dispatch.runs_here(),
            identity=who,
            generation_id=generation_id,
            action=action,
            message_id=message.message_id,
        ),
    )


async def unknown_button(update, context):
    """A press whose data we never made (an old keyboard, or forged): answered, so the spinner stops."""
    await update.callback_query.answer(texts.say(identity(update).language_code, texts.BUTTON_UNKNOWN))


async def settings_command(update, context):
    who = identity(update)
    user, _ = await sync_to_async(generations.account)(who)
    await update.effective_message.reply_html(
        texts.say(who.language_code, texts.SETTINGS, resolution=user.resolution, aspect_ratio=user.aspect_ratio),
        reply_markup=keyboards.settings(user),
    )


async def settings_pressed(update, context):
    query = update.callback_query
    who = identity(update)
    field, _, value = (query.data or "").partition(":")[2].partition(":")
    if field not in ("res", "ar"):
        await query.answer()
        return
    change = {"resolution": value} if field == "res" else {"aspect_ratio": value}
    try:
        user = await sync_to_async(generations.change_defaults)(identity=who, **change)
    except generations.Refusal as refusal:
        await query.answer(texts.refusal(who.language_code, refusal), show_alert=True)
        return
    await query.answer(
        texts.say(who.language_code, texts.SETTINGS_SAVED, resolution=user.resolution, aspect_ratio=user.aspect_ratio)
    )
    with suppress(TelegramError):  # "message is not modified" when the same button is pressed twice
        await query.edit_message_text(
            texts.say(who.language_code, texts.SETTINGS, resolution=user.resolution, aspect_ratio=user.aspect_ratio),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboards.settings(user),
        )


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
