"""Everything the bot says, translatable. Messages are sent with HTML parse mode, so every
value filled in is escaped here, in one place."""

import math
from html import escape

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, override

from botcore.errors import ErrorCode

WELCOME = _(
    "Hi %(name)s! I turn words into images with Nano Banana Pro.\n\n"
    "Send me a description of the picture you want, like <i>a red fox reading a book, watercolour</i>.\n"
    "Your plan: <b>%(tier)s</b>, %(quota)s.\n"
    "/help lists what I can do."
)
HELP = _(
    "<b>How to use me</b>\n"
    "Just send a description (at least 3 characters) and I reply with an image.\n\n"
    "/generate <i>prompt</i> – an image at 2K\n"
    "/hd <i>prompt</i> – an image at 4K, if your plan includes it\n"
    "/quota – how many images you have left today\n"
    "/balance – your free images and credits\n"
    "/buy – buy more images with Telegram Stars\n"
    "/cancel – stop the images being made for you\n"
    "/help – this message\n\n"
    "You are only charged for images you actually receive."
)
QUOTA_LEFT = _("%(remaining)d of %(limit)d images left today")
QUOTA_UNLIMITED = _("unlimited images")
QUOTA = _("Your plan: <b>%(tier)s</b>, %(quota)s. Highest resolution: %(resolution)s.")
WORKING = _("🎨 Creating your image (%(resolution)s, %(aspect_ratio)s)…")
QUEUED = _("⏳ You're in the queue: %(ahead)d ahead of you, about %(wait)s to wait.")
QUEUED_NEXT = _("⏳ You're next in the queue, about %(wait)s to wait.")
WAIT_SECONDS = _("%(seconds)d s")
WAIT_MINUTES = _("%(minutes)d min")
MISSING_PROMPT = _("Add a description after the command, for example: <code>/%(command)s a lighthouse at dawn</code>")
UNSUPPORTED = _("I make images from text. Send me a description of the picture you want, or /help.")
INTERNAL = _("Sorry, something went wrong on our side. Nothing was charged; please try again.")

REFUSALS = {
    ErrorCode.PROMPT_TOO_SHORT: _("Please describe the image in at least %(minimum)d characters."),
    ErrorCode.PROMPT_TOO_LONG: _("That description is too long; please keep it under %(maximum)d characters."),
    ErrorCode.BANNED: _("You can't generate images: %(reason)s"),
    ErrorCode.BANNED_UNTIL: _("You can't generate images until %(until)s: %(reason)s"),
    ErrorCode.BANNED_KEYWORD: _("This description contains something we don't allow. Please rephrase it."),
    ErrorCode.RESOLUTION: _(
        "%(resolution)s images aren't included in your plan; the highest you can get is %(maximum)s."
    ),
    ErrorCode.BUSY: _("You already have %(limit)d image(s) in progress. Please wait for them to finish."),
    ErrorCode.COOLDOWN: _("Please wait %(seconds)d more seconds before your next image."),
    ErrorCode.QUOTA: _("You've used all %(limit)d images for today. Your quota renews at midnight (%(timezone)s)."),
    ErrorCode.QUOTA_FOR_BATCH: _("You asked for %(count)d images but have %(remaining)d left today."),
    ErrorCode.BATCH_SIZE: _("A batch makes 2 to %(maximum)d images, for example: <code>/batch 3 a koi pond</code>"),
    ErrorCode.ASPECT_RATIO: _("%(value)s isn't an aspect ratio I can make. Choose one of: %(choices)s."),
    ErrorCode.TOO_MANY_PHOTOS: _("I can use at most %(maximum)d photos at once."),
    ErrorCode.ALREADY_4K: _("This image is already 4K."),
    ErrorCode.RESULT_GONE: _("That image is too old for this; please send a new request."),
    ErrorCode.ALREADY_SENT: _("This image was sent to you already."),
}

FAILURES = {
    ErrorCode.SAFETY: _("🚫 The image service declined this request for safety reasons. Try rephrasing it."),
    ErrorCode.NO_IMAGE: _("The image service answered without a usable image. Please try again or rephrase."),
    ErrorCode.INCOMPLETE: _("The image service stopped before your image was finished. Please try again."),
    ErrorCode.LANGUAGE: _(
        "The image service can't work in the language of this description. Please try it in English."
    ),
    ErrorCode.BAD_REQUEST: _("The image service couldn't process this request. Please try a different description."),
    ErrorCode.OPERATOR: _("Image generation is unavailable right now; the operators have been told."),
    ErrorCode.RATE_LIMITED: _("The image service is very busy right now. Please try again in a minute."),
    ErrorCode.UNAVAILABLE: _("The image service is unavailable right now. Please try again in a few minutes."),
    ErrorCode.TIMEOUT: _("The image took too long to make. Please try again."),
    ErrorCode.DELIVERY: _("The image was made but couldn't be sent to you. Please try again."),
    ErrorCode.UNDELIVERED: _(
        "Your image was made, but Telegram wouldn't take it just now. It is kept for you: "
        "press the button to get it as a file."
    ),
    ErrorCode.INTERRUPTED: _("The bot restarted while making your image. Please send your request again."),
    ErrorCode.INPUT_TOO_BIG: _("That file is over Telegram's 20 MB limit for bots. Please send a smaller image."),
    ErrorCode.INPUT_NOT_IMAGE: _("I can only use JPEG, PNG or WEBP images, and that file isn't one I can read."),
    ErrorCode.INPUT_TOO_MANY_PIXELS: _(
        "That image has too many pixels for me (more than 50 megapixels). Please send a smaller one."
    ),
    ErrorCode.INPUT_GONE: _("I couldn't fetch your photo from Telegram. Please send it again."),
    ErrorCode.RESULT_GONE: _("That image is too old for this; please send a new request."),
    ErrorCode.CANCELLED: _("⏹ Stopped, as you asked."),
    ErrorCode.BUDGET: _(
        "This bot has spent its image budget for now, so new images are paused until it renews. Please try again later."
    ),
}
NOTHING_CHARGED = _("Nothing was charged.")
STOPPED = ngettext_lazy(
    "⏹ Stopped %(count)d image. Nothing was charged for it.",
    "⏹ Stopped %(count)d images. Nothing was charged for them.",
    "count",
)
STILL_COMING = ngettext_lazy(
    "%(count)d image was too far along to stop and will still arrive.",
    "%(count)d images were too far along to stop and will still arrive.",
    "count",
)
NOTHING_TO_STOP = _("No images are being made for you right now.")
BATCH_ACTIONS = _("Your %(count)d images are above. What next?")
BATCH_PARTLY_FAILED = _(
    "%(failed)d of %(total)d images couldn't be made: %(reason)s Only the images you received were charged."
)
PHOTO_NEEDS_CAPTION = _("Add a caption saying what to do with your photo, or reply to it with a description.")
BUTTON_NOT_YOURS = _("This button belongs to someone else's image.")
BUTTON_UNKNOWN = _("This button doesn't work any more.")
EDIT_IGNORED = _("Editing a message doesn't start a new image. Send the new description as a new message.")
NO_SENDER = _("I can't tell who sent this message, so I can't make an image for it.")
ORIGINAL_GONE = _("The original file of this image is no longer kept.")
SETTINGS = _(
    "<b>Your defaults</b>: %(resolution)s, %(aspect_ratio)s.\n"
    "Tap to change them. A prompt can also say <code>--ar 16:9</code> or <code>--4k</code>."
)
SETTINGS_SAVED = _("Saved: %(resolution)s, %(aspect_ratio)s.")
BUTTONS = {
    "regenerate": _("🔁 Regenerate"),
    "variation": _("🎨 Variation"),
    "upscale": _("⬆️ 4K"),
    "original": _("📄 Original"),
    "send": _("📨 Send my image"),
}
# Credit packs for Telegram Stars (payments.py). An invoice's texts and a checkout's refusal are plain text.
BUY_HINT = _("Buy more images with /buy.")
BUY_MENU = _(
    "Buy images with Telegram Stars ⭐. Credits are used once your free images of the day are gone, and an "
    "image that fails costs nothing."
)
NOTHING_ON_SALE = _("Nothing is for sale right now.")
PACK_BUTTON = _("%(name)s · %(images)d images · %(stars)d ⭐")
INVOICE_DESCRIPTION = _("%(images)d images with Nano Banana Pro, used after your free images of the day.")
INVOICE_UPGRADE = _("Includes the %(tier)s plan for %(days)d days.")
INVOICE_EXPIRY = _("Credits expire %(days)d days after purchase.")
INVOICE_PRICE = _("%(images)d images")
PACK_GONE = _("This pack is no longer sold like this. Send /buy to see the packs on sale.")
CHECKOUT_REFUSALS = {
    "gone": PACK_GONE,
    "banned": _("Your account can't make purchases while it is banned."),
    "error": _("Something went wrong on our side; please try again in a minute. You were not charged."),
}
PAID = _("Thank you! %(images)d credits added; you have %(credits)d now.")
PAID_UPGRADE = _("Your plan is %(tier)s until %(until)s.")
BALANCE = _("Today: %(quota)s.\nCredits: <b>%(credits)d</b>.")
BALANCE_EXPIRING = _("%(count)d of them expire on %(date)s.")
BALANCE_HELD = _("%(count)d more are held for images being made.")
BALANCE_PLAN = _("Your plan: <b>%(tier)s</b>.")
BALANCE_PLAN_UNTIL = _("Your plan: <b>%(tier)s</b> until %(until)s.")
PAYSUPPORT_CONTACT = _("Questions about a payment? Write to %(contact)s and say which payment (the code below).")
PAYSUPPORT_HERE = _(
    "Questions about a payment? Send <code>/paysupport</code> followed by your message, and it goes to the "
    "people who run this bot."
)
PAYSUPPORT_SENT = _("Thank you, your message was passed on. We'll answer you here.")
PAYSUPPORT_PAYMENTS = _("Your latest payments:")
PAYSUPPORT_NO_PAYMENTS = _("You haven't made any payments.")
PAYSUPPORT_REFUNDED = _("refunded")
TERMS = _(
    "<b>Terms</b>\n"
    "Packs are digital goods paid in Telegram Stars. Each credit buys one image, used once the free images of "
    "the day are gone. You are only charged for images you actually receive: a failed image gives its credit "
    "back. Bought credits expire %(days)d days after purchase. Refunds are at the operators' discretion: ask "
    "with /paysupport."
)
TERMS_NO_EXPIRY = _(
    "<b>Terms</b>\n"
    "Packs are digital goods paid in Telegram Stars. Each credit buys one image, used once the free images of "
    "the day are gone. You are only charged for images you actually receive: a failed image gives its credit "
    "back. Bought credits don't expire. Refunds are at the operators' discretion: ask with /paysupport."
)
TERMS_MORE = _("The full terms: %(url)s")
ADMIN_PAYSUPPORT = _("💬 Payment support request from %(user)s (id %(telegram_id)d):\n%(text)s")
ADMIN_BUDGET_ALERT = _(
    "⚠️ NanoBot operator alert: the %(period)s budget of %(amount)s is reached (%(spent)s spent, %(in_flight)s "
    "in flight). New images are refused until it renews, or until you raise %(setting)s."
)
ADMIN_ALERT = _(
    "⚠️ NanoBot operator alert: the image provider rejected our credentials, model, account or request (%(detail)s)."
)


TRADITIONAL_REGIONS = {"tw", "hk", "mo"}


def language(code):
    """The UI language for a Telegram language code, an IETF tag such as "en", "zh-hans" or "zh-hant-tw":
    Chinese by the script the tag names, else by its region (Taiwan, Hong Kong and Macau write Traditional);
    plain "zh" and every other region read Simplified, as most Chinese readers do. Everything else is English."""
    subtags = (code or "").lower().replace("_", "-").split("-")
    if subtags[0] != "zh":
        return "en"
    if "hans" in subtags:
        return "zh-hans"
    if "hant" in subtags or TRADITIONAL_REGIONS.intersection(subtags):
        return "zh-hant"
    return "zh-hans"


def say(lang, message, **params):
    with override(language(lang)):
        if not params:
            return str(message)
        # `message % params`, not str(message) % params: a plural message picks its form by the number.
        return str(message % {k: escape(v) if isinstance(v, str) else v for k, v in params.items()})


def quota_summary(lang, remaining, limit):
    if limit is None:
        return say(lang, QUOTA_UNLIMITED)
    return say(lang, QUOTA_LEFT, remaining=remaining, limit=limit)


def stopped(lang, count, still_coming):
    """The answer to /cancel."""
    if not count and not still_coming:
        return say(lang, NOTHING_TO_STOP)
    parts = [say(lang, STOPPED, count=count)] if count else []
    if still_coming:
        parts.append(say(lang, STILL_COMING, count=still_coming))
    return "\n".join(parts)


def queued(lang, ahead, seconds):
    """Where a job stands in the queue for the image API, and roughly how long until it starts."""
    if seconds < 60:
        wait = say(lang, WAIT_SECONDS, seconds=max(5, 5 * math.ceil(seconds / 5)))
    else:
        wait = say(lang, WAIT_MINUTES, minutes=math.ceil(seconds / 60))
    return say(lang, QUEUED, ahead=ahead, wait=wait) if ahead else say(lang, QUEUED_NEXT, wait=wait)


def refusal(lang, refusal):
    params = dict(refusal.params)
    key = refusal.code
    if key == ErrorCode.BANNED:
        until = params.pop("until")
        if until:
            key, params["until"] = ErrorCode.BANNED_UNTIL, local_time(until)
    buy = params.pop("buy", False)
    if key == ErrorCode.QUOTA:
        params["timezone"] = settings.TIME_ZONE
    text = say(lang, REFUSALS[key], **params)
    return f"{text}\n{say(lang, BUY_HINT)}" if buy else text


def failure(lang, code):
    if code not in FAILURES:
        return say(lang, INTERNAL)
    with override(language(lang)):
        return f"{FAILURES[code]} {NOTHING_CHARGED}"


def failure_reason(lang, code):
    with override(language(lang)):
        return str(FAILURES.get(code, INTERNAL))


def button(lang, action):
    with override(language(lang)):
        return str(BUTTONS[action])


def caption(prompt, resolution, aspect_ratio, limit=1024):
    """The result's caption: the prompt and the settings used, within Telegram's limit, which
    counts the visible text in UTF-16 units; the prompt is cut before escaping, so no tag or
    entity is ever cut in half."""
    footer = f"\n{resolution} · {aspect_ratio}"
    room = limit - _utf16_len(footer)
    if _utf16_len(prompt) > room:
        kept, used = [], 1  # the "…"
        for char in prompt:
            used += _utf16_len(char)
            if used > room:
                break
            kept.append(char)
        prompt = "".join(kept) + "…"
    return f"<i>{escape(prompt)}</i>{footer}"


def _utf16_len(text):
    return len(text.encode("utf-16-le")) // 2


def local_time(moment):
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")
