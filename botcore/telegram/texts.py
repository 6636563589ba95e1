"""Everything the bot says, translatable. Messages are sent with HTML parse mode, so every
value filled in is escaped here, in one place."""

from html import escape

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import override

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
    "/help – this message\n\n"
    "You are only charged for images you actually receive."
)
QUOTA_LEFT = _("%(remaining)d of %(limit)d images left today")
QUOTA_UNLIMITED = _("unlimited images")
QUOTA = _("Your plan: <b>%(tier)s</b>, %(quota)s. Highest resolution: %(resolution)s.")
WORKING = _("🎨 Creating your image (%(resolution)s, %(aspect_ratio)s)…")
MISSING_PROMPT = _("Add a description after the command, for example: <code>/%(command)s a lighthouse at dawn</code>")
UNSUPPORTED = _("I make images from text. Send me a description of the picture you want, or /help.")
INTERNAL = _("Sorry, something went wrong on our side. Nothing was charged; please try again.")

REFUSALS = {
    "prompt_too_short": _("Please describe the image in at least %(minimum)d characters."),
    "prompt_too_long": _("That description is too long; please keep it under %(maximum)d characters."),
    "banned": _("You can't generate images: %(reason)s"),
    "banned_until": _("You can't generate images until %(until)s: %(reason)s"),
    "banned_keyword": _("This description contains something we don't allow. Please rephrase it."),
    "resolution": _("%(resolution)s images aren't included in your plan; the highest you can get is %(maximum)s."),
    "busy": _("You already have %(limit)d image(s) in progress. Please wait for them to finish."),
    "cooldown": _("Please wait %(seconds)d more seconds before your next image."),
    "quota": _("You've used all %(limit)d images for today. Your quota renews at midnight (%(timezone)s)."),
    "quota_for_batch": _("You asked for %(count)d images but have %(remaining)d left today."),
    "batch_size": _("A batch makes 2 to %(maximum)d images, for example: <code>/batch 3 a koi pond</code>"),
    "aspect_ratio": _("%(value)s isn't an aspect ratio I can make. Choose one of: %(choices)s."),
    "too_many_photos": _("I can use at most %(maximum)d photos at once."),
    "already_4k": _("This image is already 4K."),
    "result_gone": _("That image is too old for this; please send a new request."),
    "already_sent": _("This image was sent to you already."),
}

FAILURES = {
    "safety": _("🚫 The image service declined this request for safety reasons. Try rephrasing it."),
    "no_image": _("The image service answered without a usable image. Please try again or rephrase."),
    "incomplete": _("The image service stopped before your image was finished. Please try again."),
    "language": _("The image service can't work in the language of this description. Please try it in English."),
    "bad_request": _("The image service couldn't process this request. Please try a different description."),
    "operator": _("Image generation is unavailable right now; the operators have been told."),
    "rate_limited": _("The image service is very busy right now. Please try again in a minute."),
    "unavailable": _("The image service is unavailable right now. Please try again in a few minutes."),
    "timeout": _("The image took too long to make. Please try again."),
    "delivery": _("The image was made but couldn't be sent to you. Please try again."),
    "undelivered": _(
        "Your image was made, but Telegram wouldn't take it just now. It is kept for you: "
        "press the button to get it as a file."
    ),
    "interrupted": _("The bot restarted while making your image. Please send your request again."),
    "input_too_big": _("That file is over Telegram's 20 MB limit for bots. Please send a smaller image."),
    "input_not_image": _("I can only use JPEG, PNG or WEBP images, and that file isn't one I can read."),
    "input_too_many_pixels": _(
        "That image has too many pixels for me (more than 50 megapixels). Please send a smaller one."
    ),
    "input_gone": _("I couldn't fetch your photo from Telegram. Please send it again."),
    "result_gone": _("That image is too old for this; please send a new request."),
}
NOTHING_CHARGED = _("Nothing was charged.")
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
ADMIN_ALERT = _(
    "⚠️ NanoBot operator alert: the image provider rejected our credentials, model, account or request (%(detail)s)."
)


def language(code):
    """The UI language for a Telegram language code: Traditional Chinese for zh-*, else English."""
    return "zh-hant" if (code or "").lower().startswith("zh") else "en"


def say(lang, message, **params):
    with override(language(lang)):
        text = str(message)
        return text % {k: escape(v) if isinstance(v, str) else v for k, v in params.items()} if params else text


def quota_summary(lang, remaining, limit):
    if limit is None:
        return say(lang, QUOTA_UNLIMITED)
    return say(lang, QUOTA_LEFT, remaining=remaining, limit=limit)


def refusal(lang, refusal):
    params = dict(refusal.params)
    key = refusal.code
    if key == "banned":
        until = params.pop("until")
        if until:
            key, params["until"] = "banned_until", local_time(until)
    if key == "quota":
        params["timezone"] = settings.TIME_ZONE
    return say(lang, REFUSALS[key], **params)


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
