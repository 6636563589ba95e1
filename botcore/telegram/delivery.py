"""Getting an image to the user: a photo Telegram accepts, plus the original when the photo isn't it."""

import asyncio
import logging
import threading
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from io import BytesIO

from PIL import Image
from telegram import ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError

from botcore import memory

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
            extension = EXTENSIONS.get(image.format)
            if extension is None:
                raise UnreadableImage(f"unsupported format {image.format}")
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


async def deliver(bot, chat_id, file, *, caption, reply_to=None, stem="image"):
    """Send the image in `file`; returns (photo file_id, original document file_id or "")."""
    _, budget = memory.for_this_loop()
    async with budget.hold(await asyncio.to_thread(_memory_needed_mb, file)):
        data = await asyncio.to_thread(file.read)
        prepared = await asyncio.to_thread(prepare, data, stem)
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        message = await bot.send_photo(
            chat_id,
            photo=prepared.photo,
            filename=prepared.photo_filename,
            caption=caption,
            parse_mode=ParseMode.HTML,
            reply_parameters=reply,
        )
        document_id = ""
        if prepared.send_original:
            try:
                document = await bot.send_document(
                    chat_id,
                    document=data,
                    filename=prepared.original_filename,
                    disable_content_type_detection=True,
                    reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True),
                )
                document_id = document.document.file_id
            except TelegramError as exc:  # the photo arrived; the user still has their image
                log.warning("original file not sent to chat %s: %s", chat_id, exc)
    return message.photo[-1].file_id, document_id


@asynccontextmanager
async def chat_action(bot, chat_id, action=ChatAction.UPLOAD_PHOTO, every=4.5):
    """Keep showing `action` (Telegram clears it after 5 s) until the block ends."""

    async def repeat():
        while True:
            with suppress(TelegramError):
                await bot.send_chat_action(chat_id, action)
            await asyncio.sleep(every)

    task = asyncio.create_task(repeat())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
