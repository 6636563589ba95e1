"""Callback data for the buttons under a result: small (Telegram allows 64 bytes), and signed
for the result's owner, so a forged or copied button can't act on someone else's image.

Quota is not the signature's job: every action goes through the same request checks as a message.
"""

import base64
import hashlib
import hmac

from django.conf import settings

ACTIONS = {"g": "regenerate", "v": "variation", "u": "upscale", "o": "original", "s": "send"}
LETTERS = {action: letter for letter, action in ACTIONS.items()}
PREFIX = "r"


def encode(action: str, generation_id: int, owner_telegram_id: int) -> str:
    letter = LETTERS[action]
    return f"{PREFIX}:{letter}:{generation_id}:{_signature(letter, generation_id, owner_telegram_id)}"


def decode(data: str, presser_telegram_id: int) -> tuple[str, int] | None:
    """(action, generation id) when `data` is a button we made for this presser's image, else None."""
    try:
        prefix, letter, number, signature = data.split(":")
        generation_id = int(number)
    except ValueError:
        return None
    if prefix != PREFIX or letter not in ACTIONS:
        return None
    if not hmac.compare_digest(signature.encode(), _signature(letter, generation_id, presser_telegram_id).encode()):
        return None
    return ACTIONS[letter], generation_id


def _signature(letter: str, generation_id: int, telegram_id: int) -> str:
    message = f"{letter}:{generation_id}:{telegram_id}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), b"nanobot-button:" + message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode()  # 72 bits, 12 characters
