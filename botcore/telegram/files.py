"""Images users send us, fetched from Telegram and checked before anything is paid for."""

import asyncio
from io import BytesIO

from PIL import Image
from telegram.error import BadRequest

from botcore import results
from botcore.providers import Reference

# The Bot API's getFile serves files up to this size.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class InputError(Exception):
    """An input image we can't use; `code` picks the message the user sees."""

    def __init__(self, code, detail=""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


async def download_image(bot, file_id):
    """A user's image as a Reference, or InputError (too big, gone, not a JPEG/PNG/WEBP)."""
    try:
        file = await bot.get_file(file_id)
    except BadRequest as exc:
        if "too big" in exc.message.lower():
            raise InputError("input_too_big", exc.message) from None
        raise InputError("input_gone", exc.message) from None
    if file.file_size and file.file_size > DOWNLOAD_LIMIT:
        raise InputError("input_too_big", f"{file.file_size} bytes")
    data = bytes(await file.download_as_bytearray())
    return Reference(data, await asyncio.to_thread(image_type, data))


def image_type(data):
    """The MIME type of image bytes we accept, after decoding them; InputError otherwise."""
    try:
        with Image.open(BytesIO(data)) as image:
            mime_type = MIME_TYPES.get(image.format)
            if mime_type is None:
                raise InputError("input_not_image", f"format {image.format}")
            image.draft("RGB", (1024, 1024))  # JPEGs decode at reduced scale: the check stays cheap
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise InputError("input_not_image", str(exc)[:200]) from None
    return mime_type


async def result_image(bot, generation):
    """One of our results as a Reference: the kept original, else Telegram's copy."""
    data = await asyncio.to_thread(results.read, generation)
    if data is not None:
        return Reference(data, await asyncio.to_thread(image_type, data))
    file_id = generation.document_file_id or generation.file_id
    if not file_id:
        raise InputError("result_gone")
    try:
        return await download_image(bot, file_id)
    except InputError:
        raise InputError("result_gone") from None
