"""Inline keyboards: the buttons under results and the /settings picker."""

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from accounts.models import ASPECT_RATIOS, RESOLUTION_ORDER
from botcore import buttons

from . import texts

RESULT_ACTIONS = ["regenerate", "variation", "upscale", "original"]
SETTINGS_PREFIX = "s"


def result(generation):
    lang = generation.user.language_code
    owner = generation.user.telegram_id
    row = [
        InlineKeyboardButton(texts.button(lang, action), callback_data=buttons.encode(action, generation.pk, owner))
        for action in RESULT_ACTIONS
    ]
    return InlineKeyboardMarkup([row[:2], row[2:]])


def batch(generations):
    """One row per image of an album (albums can't carry buttons themselves)."""
    rows = []
    for number, generation in enumerate(generations, start=1):
        owner = generation.user.telegram_id
        rows.append(
            [
                InlineKeyboardButton(f"{number} {symbol}", callback_data=buttons.encode(action, generation.pk, owner))
                for action, symbol in zip(RESULT_ACTIONS, ["🔁", "🎨", "⬆️", "📄"], strict=True)
            ]
        )
    return InlineKeyboardMarkup(rows)


def undelivered(generations):
    """A button for each result that was made but couldn't be sent: a press sends it as a file."""
    lang = generations[0].user.language_code
    label = texts.button(lang, "send")
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    label if len(generations) == 1 else f"{number} {label}",
                    callback_data=buttons.encode("send", generation.pk, generation.user.telegram_id),
                )
            ]
            for number, generation in enumerate(generations, start=1)
        ]
    )


def settings(user):
    def mark(value, current):
        return f"• {value} •" if value == current else value

    sizes = [
        InlineKeyboardButton(
            mark(size, user.resolution) if user.tier.allows(size) else f"🔒 {size}",
            callback_data=f"{SETTINGS_PREFIX}:res:{size}",
        )
        for size in RESOLUTION_ORDER
    ]
    ratios = [
        InlineKeyboardButton(mark(ratio, user.aspect_ratio), callback_data=f"{SETTINGS_PREFIX}:ar:{ratio}")
        for ratio in ASPECT_RATIOS
    ]
    return InlineKeyboardMarkup([sizes, ratios[:5], ratios[5:]])
