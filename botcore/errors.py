"""Every code a request can end with: why it was refused, or why it failed.

A code is stored in Generation.error_code and picks the words the user sees (telegram/texts.py),
so the values are the stored ones: renaming a member is free, changing a value is a data migration.
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    # Refused before anything was paid for (generations.Refusal); only banned_keyword is stored.
    PROMPT_TOO_SHORT = "prompt_too_short"
    PROMPT_TOO_LONG = "prompt_too_long"
    BANNED = "banned"
    BANNED_UNTIL = "banned_until"  # a ban with an expiry: only a choice of words
    BANNED_KEYWORD = "banned_keyword"
    RESOLUTION = "resolution"
    BUSY = "busy"
    COOLDOWN = "cooldown"
    QUOTA = "quota"
    QUOTA_FOR_BATCH = "quota_for_batch"
    BATCH_SIZE = "batch_size"
    ASPECT_RATIO = "aspect_ratio"
    TOO_MANY_PHOTOS = "too_many_photos"
    ALREADY_4K = "already_4k"
    ALREADY_SENT = "already_sent"
    BUDGET = "budget"  # the spend limit is reached (botcore/spending.py): stored, as it is decided in the job
    RESULT_GONE = "result_gone"  # also a failure: an older result can't be refined

    # The image provider's answer (providers.ProviderError).
    SAFETY = "safety"  # the provider refused the prompt or the image
    NO_IMAGE = "no_image"  # answered, but without a usable image
    INCOMPLETE = "incomplete"  # the model stopped before its image was done (cut off, or it went astray)
    LANGUAGE = "language"  # the model doesn't work in the prompt's language
    BAD_REQUEST = "bad_request"  # the provider rejected the request as malformed
    OPERATOR = "operator"  # key, permission, model or billing problem: for the admins to fix
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # 5xx or unreachable
    TIMEOUT = "timeout"

    # The user's input image (telegram.files.InputError).
    INPUT_TOO_BIG = "input_too_big"
    INPUT_NOT_IMAGE = "input_not_image"
    INPUT_TOO_MANY_PIXELS = "input_too_many_pixels"
    INPUT_GONE = "input_gone"

    # Ours.
    DELIVERY = "delivery"  # made and paid for, but Telegram didn't take it
    UNDELIVERED = "undelivered"  # a DELIVERY whose image is kept and offered with a button: only words
    INTERRUPTED = "interrupted"  # its runner died, or it was left open
    CANCELLED = "cancelled"  # its user stopped it (/cancel)
    INTERNAL = "internal"
