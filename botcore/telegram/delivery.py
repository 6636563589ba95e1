"""Getting an image to the user: a photo Telegram accepts, plus the original when the photo isn't it."""

import asyncio
import logging
import threading
from contextlib import suppress
from dataclasses import dataclass, replace
from io import BytesIO

from django.conf import settings
from PIL import Image
from telegram import InputMediaDocument, InputMediaPhoto, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from botcore import delivery_mode, memory, results
from botcore.periodic import repeating

from .files import MAX_INPUT_PIXELS
from .outbound import retry_seconds

log = logging.getLogger(__name__)

PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES = 10_000  # width + height
PHOTO_MAX_RATIO = 20
# Telegram keeps photos at most this long on their long side; anything larger only
# survives at full quality as a document.
PHOTO_SHOWN_SIDE = 2560
PREVIEW_QUALITY = 90
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

# Decoding a 4K image takes ~50 MB; bound how many are decoded at once across all jobs.
_decoding = threading.BoundedSemaphore(2)
# Waits between tries of a result's upload, as shares of SEND_RETRY_SECONDS (a minute by default).
RETRY_SHARES = (1 / 60, 2 / 60, 4 / 60, 8 / 60, 15 / 60, 30 / 60)


class UnreadableImage(Exception):
    pass


@dataclass(frozen=True)
class Prepared:
    photo: bytes
    photo_filename: str
    original_filename: str
    send_original: bool


def fits_as_photo(size, width, height):
    """Whether Telegram takes these image bytes as a photo as they are."""
    return (
        size <= PHOTO_MAX_BYTES
        and width + height <= PHOTO_MAX_SIDES
        and max(width, height) <= PHOTO_MAX_RATIO * min(width, height)
    )


def prepare(data, stem="image"):
    """Decide what to send for these image bytes; recompress a preview when Telegram wouldn't take them."""
    try:
        with Image.open(BytesIO(data)) as image:
            width, height = image.size
            extension = EXTENSIONS.get(image.format or "")
            if extension is None:
                raise UnreadableImage(f"unsupported format {image.format}")
            if width * height > MAX_INPUT_PIXELS:  # a relay's bomb is decoded no more than a user's
                raise UnreadableImage(f"{width}x{height} pixels")
            fits = fits_as_photo(len(data), width, height)
            photo = data if fits else _preview(image)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(str(exc)) from None
    return Prepared(
        photo=photo,
        photo_filename=f"{stem}.{extension if fits else 'jpg'}",
        original_filename=f"{stem}.{extension}",
        send_original=not fits or max(width, height) > PHOTO_SHOWN_SIDE,
    )


def _preview(image):
    with _decoding:
        # thumbnail() works in place (a JPEG even decodes at reduced scale), so the full-size
        # pixels exist once; convert() afterwards copies only the small image.
        image.thumbnail((PHOTO_SHOWN_SIDE, PHOTO_SHOWN_SIDE), Image.Resampling.LANCZOS)
        preview = image if image.mode == "RGB" else image.convert("RGB")
        out = BytesIO()
        preview.save(out, "JPEG", quality=PREVIEW_QUALITY)
        return out.getvalue()


def _memory_needed_mb(file):
    """What preparing and uploading this image holds in memory: the bytes (and the upload's
    copy of them), plus the decoded pixels when a preview has to be made."""
    size = file.seek(0, 2)
    file.seek(0)
    try:
        with Image.open(file) as image:
            width, height = image.size
    except (OSError, ValueError):
        width = height = 0  # prepare() will say it is unreadable
    file.seek(0)
    pixels = 0 if fits_as_photo(size, width, height) else width * height * 4  # decoded RGB plus the preview
    return (3 * size + pixels) // memory.MB + 1


async def persistently(send):
    """Await `send()`, the upload of a paid result, trying again through Telegram's passing faults
    (a 5xx, a network error, a 429 the rate limiter couldn't absorb) for about SEND_RETRY_SECONDS.
    A time-out may have reached the chat: a rare duplicate beats a paid image lost."""
    for share in (*RETRY_SHARES, None):
        try:
            return await send()
        except (NetworkError, RetryAfter) as exc:
            if share is None or isinstance(exc, BadRequest):  # PTB's BadRequest is a NetworkError
                raise
            wait = share * settings.SEND_RETRY_SECONDS
            if isinstance(exc, RetryAfter):
                wait = max(wait, retry_seconds(exc.retry_after))
            log.info("result upload failed (%s); trying again in %.1f s", exc, wait)
            await asyncio.sleep(wait)


@dataclass(frozen=True)
class Sent:
    message_id: int  # the message carrying the result (the photo, or the file in document mode)
    file_id: str = ""  # the photo's
    document_file_id: str = ""  # the original file's
    document_message_id: int | None = None  # the original file's message, when it followed the photo


async def deliver(bot, chat_id, file, *, caption, reply_to=None, stem="image", reply_markup=None):
    """Send the image in `file` as the delivery mode says."""
    _, budget = memory.for_this_loop()
    async with budget.hold(await asyncio.to_thread(_memory_needed_mb, file)):
        data = await asyncio.to_thread(file.read)
        prepared = await asyncio.to_thread(prepare, data, stem)
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        parts = delivery_mode.parts(photo_is_original=not prepared.send_original)
        if not parts.photo:
            message = await persistently(
                lambda: _send_original(bot, chat_id, data, prepared, caption, reply, reply_markup)
            )
            return Sent(message.message_id, document_file_id=message.document.file_id)
        message = await persistently(
            lambda: bot.send_photo(
                chat_id,
                photo=prepared.photo,
                filename=prepared.photo_filename,
                caption=caption,
                parse_mode=ParseMode.HTML,
                reply_parameters=reply,
                reply_markup=reply_markup,
            )
        )
        sent = Sent(message.message_id, message.photo[-1].file_id)
        if parts.original:
            try:
                below = ReplyParameters(message.message_id, allow_sending_without_reply=True)
                document = await _send_original(bot, chat_id, data, prepared, None, below, None)
                sent = replace(
                    sent, document_file_id=document.document.file_id, document_message_id=document.message_id
                )
            except TelegramError as exc:  # the photo arrived; the user still has their image
                log.warning("original file not sent to chat %s: %s", chat_id, exc)
    return sent


async def _send_original(bot, chat_id, data, prepared, caption, reply, reply_markup):
    return await bot.send_document(
        chat_id,
        document=data,
        filename=prepared.original_filename,
        caption=caption,
        parse_mode=ParseMode.HTML,
        disable_content_type_detection=True,
        reply_parameters=reply,
        reply_markup=reply_markup,
    )


async def deliver_album(bot, chat_id, files, *, caption, reply_to=None, stem="image"):
    """Send several images as one album, as the delivery mode says; a Sent for each, in order."""
    _, budget = memory.for_this_loop()
    needed = sum([await asyncio.to_thread(_memory_needed_mb, file) for file in files])
    async with budget.hold(needed):
        images = []
        for index, file in enumerate(files):
            data = await asyncio.to_thread(file.read)
            images.append((data, await asyncio.to_thread(prepare, data, f"{stem}-{index + 1}")))
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        if not delivery_mode.parts().photo:
            media = _originals(images, caption)
            messages = await persistently(lambda: bot.send_media_group(chat_id, media, reply_parameters=reply))
            return [Sent(m.message_id, document_file_id=m.document.file_id) for m in messages]
        photos = [
            InputMediaPhoto(
                prepared.photo,
                filename=prepared.photo_filename,
                caption=caption if index == 0 else None,
                parse_mode=ParseMode.HTML,
            )
            for index, (_, prepared) in enumerate(images)
        ]
        messages = await persistently(lambda: bot.send_media_group(chat_id, photos, reply_parameters=reply))
        sent = [Sent(message.message_id, message.photo[-1].file_id) for message in messages]
        wanted = [
            index
            for index, (_, prepared) in enumerate(images)
            if delivery_mode.parts(photo_is_original=not prepared.send_original).original
        ]
        if wanted:
            sent = await _add_originals(bot, chat_id, images, sent, wanted)
    return sent


def _originals(images, caption=None):
    return [
        InputMediaDocument(
            data,
            filename=prepared.original_filename,
            caption=caption if index == 0 else None,
            parse_mode=ParseMode.HTML,
            disable_content_type_detection=True,
        )
        for index, (data, prepared) in enumerate(images)
    ]


async def _add_originals(bot, chat_id, images, sent, wanted):
    """The originals of the album's recompressed photos, below it (an album of files, or one file)."""
    below = ReplyParameters(sent[0].message_id, allow_sending_without_reply=True)
    try:
        if len(wanted) == 1:
            (index,) = wanted
            data, prepared = images[index]
            documents = [await _send_original(bot, chat_id, data, prepared, None, below, None)]
        else:
            media = _originals([images[index] for index in wanted])
            documents = await bot.send_media_group(chat_id, media, reply_parameters=below)
    except TelegramError as exc:  # the photos arrived; the users still have their images
        log.warning("album originals not sent to chat %s: %s", chat_id, exc)
        return sent
    sent = list(sent)
    for index, document in zip(wanted, documents, strict=True):
        sent[index] = replace(
            sent[index], document_file_id=document.document.file_id, document_message_id=document.message_id
        )
    return sent


async def send_original_of(bot, generation, *, reply_to=None):
    """Send a result's original file: by file_id when Telegram has it, else from the kept file.
    The message, or None when neither exists any more."""
    reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
    if generation.document_file_id:
        return await bot.send_document(generation.chat_id, document=generation.document_file_id, reply_parameters=reply)
    data = await asyncio.to_thread(results.read, generation)
    if data is None:
        return None
    name = f"nanobot-{generation.pk}.{generation.original.name.rsplit('.', 1)[-1]}"
    return await bot.send_document(
        generation.chat_id, document=data, filename=name, disable_content_type_detection=True, reply_parameters=reply
    )


async def resend(bot, chat_id, earlier, *, caption, reply_to=None, reply_markup=None):
    """Send an image Telegram already has (an earlier result's file_ids) again."""
    reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
    common = {"caption": caption, "parse_mode": ParseMode.HTML, "reply_parameters": reply, "reply_markup": reply_markup}
    # A result kept an original file beside its photo only when the photo wasn't the original.
    parts = delivery_mode.parts(photo_is_original=not earlier.document_file_id)
    if earlier.file_id and parts.photo:
        message = await bot.send_photo(chat_id, photo=earlier.file_id, **common)
        sent = Sent(message.message_id, earlier.file_id)
        if parts.original:
            below = ReplyParameters(message.message_id, allow_sending_without_reply=True)
            try:
                document = await bot.send_document(chat_id, document=earlier.document_file_id, reply_parameters=below)
                sent = replace(sent, document_file_id=earlier.document_file_id, document_message_id=document.message_id)
            except TelegramError as exc:
                log.warning("original file not resent to chat %s: %s", chat_id, exc)
        return sent
    message = await bot.send_document(chat_id, document=earlier.document_file_id, **common)
    return Sent(message.message_id, earlier.file_id, earlier.document_file_id)


def chat_action(bot, chat_id, action=ChatAction.UPLOAD_PHOTO, every=4.5):
    """Keep showing `action` (Telegram clears it after 5 s) until the block ends."""

    async def show():
        with suppress(TelegramError):
            await bot.send_chat_action(chat_id, action)

    return repeating(show, every)
