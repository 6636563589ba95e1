"""Images users send us, fetched from Telegram and checked before anything is paid for."""

import asyncio
from io import BytesIO

from PIL import Image
from telegram import Bot
from telegram.error import BadRequest

from botcore import results
from botcore.errors import ErrorCode
from botcore.models import Generation
from botcore.providers import Reference

# The Bot API's getFile serves files up to this size.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Larger inputs are refused: Gemini scales inputs down anyway, and decoding one would take
# 200 MB and more (a 4K image is 8.3 megapixels).
MAX_INPUT_PIXELS = 50_000_000
# A larger WEBP is checked from its header only (the image API refuses a broken one): decoding it would
# take more than 64 MB.
MAX_DECODED_WEBP_PIXELS = 16_000_000


class InputError(Exception):
    """An input image we can't use; `code` picks the message the user sees."""

    def __init__(self, code: ErrorCode | str, detail: str = ""):
        self.code = ErrorCode(code)
        super().__init__(f"{self.code}: {detail}" if detail else self.code)
        self.detail = detail


async def download_image(bot: Bot, file_id: str) -> Reference:
    """A user's image as a Reference, or InputError (too big, gone, not a JPEG/PNG/WEBP)."""
    try:
        file = await bot.get_file(file_id)
    except BadRequest as exc:
        if "too big" in exc.message.lower():
            raise InputError(ErrorCode.INPUT_TOO_BIG, exc.message) from None
        raise InputError(ErrorCode.INPUT_GONE, exc.message) from None
    if file.file_size and file.file_size > DOWNLOAD_LIMIT:
        raise InputError(ErrorCode.INPUT_TOO_BIG, f"{file.file_size} bytes")
    data = bytes(await file.download_as_bytearray())
    return Reference(data, await asyncio.to_thread(image_type, data))


def image_type(data: bytes) -> str:
    """The MIME type of image bytes we accept; InputError otherwise.

    Measured from the header before anything is decoded: a 650 KB PNG can hold 13000x13000 pixels
    (680 MB decoded). Below the pixel budget, a JPEG is decoded at reduced scale, a PNG's chunks are
    checked without inflating them, and a WEBP is decoded only when it is small.
    """
    try:
        with Image.open(BytesIO(data)) as image:
            mime_type = MIME_TYPES.get(image.format or "")
            if mime_type is None:
                raise InputError(ErrorCode.INPUT_NOT_IMAGE, f"format {image.format}")
            width, height = image.size
            if width * height > MAX_INPUT_PIXELS:
                raise InputError(ErrorCode.INPUT_TOO_MANY_PIXELS, f"{width}x{height}")
            if image.format == "JPEG":
                image.draft("RGB", (1024, 1024))
                image.load()
            elif image.format == "PNG":
                image.verify()
            elif width * height <= MAX_DECODED_WEBP_PIXELS:  # WEBP decodes only at full size
                image.load()
    except Image.DecompressionBombError as exc:  # Pillow refuses to open images past ~179 megapixels
        raise InputError(ErrorCode.INPUT_TOO_MANY_PIXELS, str(exc)[:200]) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(ErrorCode.INPUT_NOT_IMAGE, str(exc)[:200]) from None
    return mime_type


async def result_image(bot: Bot, generation: Generation) -> Reference:
    """One of our results as a Reference: the kept original, else Telegram's copy."""
    data = await asyncio.to_thread(results.read, generation)
    if data is not None:
        return Reference(data, await asyncio.to_thread(image_type, data))
    file_id = generation.document_file_id or generation.file_id
    if not file_id:
        raise InputError(ErrorCode.RESULT_GONE)
    try:
        return await download_image(bot, file_id)
    except InputError:
        raise InputError(ErrorCode.RESULT_GONE) from None
