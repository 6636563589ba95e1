"""What a result is sent as: the one place DELIVERY_MODE is read.

`both` sends a photo, and the original file below it whenever the photo isn't the original (a
recompressed preview, or an image Telegram shows smaller); `photo` only the photo; `document` only
the original file, carrying the caption and buttons.
"""

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Parts:
    photo: bool  # a photo message
    original: bool  # the original file: the result's own message without a photo, else one below the photo


def parts(*, photo_is_original: bool = True) -> Parts:
    """What to send for a result whose photo is (or isn't) its original image."""
    mode = settings.DELIVERY_MODE
    return Parts(
        photo=mode != "document",
        original=mode == "document" or (mode == "both" and not photo_is_original),
    )
