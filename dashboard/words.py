"""Words for people, not codes: what an error kind or an audit entry means, in the reader's language,
and each change an entry records as "tier: free → premium"."""

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext_lazy as _

from accounts.models import AuditEntry
from botcore.errors import ErrorCode

from .templatetags.figures import when

ERROR_KINDS = {
    ErrorCode.PROMPT_TOO_SHORT: _("The prompt was too short."),
    ErrorCode.PROMPT_TOO_LONG: _("The prompt was too long."),
    ErrorCode.BANNED: _("The user is banned."),
    ErrorCode.BANNED_UNTIL: _("The user is banned for a while."),
    ErrorCode.BANNED_KEYWORD: _("The prompt has a banned keyword."),
    ErrorCode.RESOLUTION: _("The size is above the user's tier."),
    ErrorCode.BUSY: _("The user already had as many jobs running as their tier allows."),
    ErrorCode.COOLDOWN: _("The user asked again too soon."),
    ErrorCode.QUOTA: _("The user had no images left today."),
    ErrorCode.QUOTA_FOR_BATCH: _("The user had too few images left for the batch."),
    ErrorCode.BATCH_SIZE: _("The batch was too large."),
    ErrorCode.ASPECT_RATIO: _("The aspect ratio is not one we offer."),
    ErrorCode.TOO_MANY_PHOTOS: _("Too many photos were sent to edit."),
    ErrorCode.ALREADY_4K: _("The image was already at 4K."),
    ErrorCode.ALREADY_SENT: _("The image had already been sent."),
    ErrorCode.RESULT_GONE: _("The image to refine is no longer kept."),
    ErrorCode.SAFETY: _("The provider refused the prompt or image as unsafe."),
    ErrorCode.NO_IMAGE: _("The provider answered without an image."),
    ErrorCode.INCOMPLETE: _("The model stopped before the image was done."),
    ErrorCode.LANGUAGE: _("The model does not work in the prompt's language."),
    ErrorCode.BAD_REQUEST: _("The provider rejected the request as malformed."),
    ErrorCode.OPERATOR: _("The provider refused our key, model or billing: an operator must fix it."),
    ErrorCode.RATE_LIMITED: _("The provider's rate limit was reached."),
    ErrorCode.UNAVAILABLE: _("The provider was down or unreachable."),
    ErrorCode.TIMEOUT: _("The provider took too long to answer."),
    ErrorCode.INPUT_TOO_BIG: _("The user's photo was too large."),
    ErrorCode.INPUT_NOT_IMAGE: _("The user's file was not an image."),
    ErrorCode.INPUT_TOO_MANY_PIXELS: _("The user's photo had too many pixels."),
    ErrorCode.INPUT_GONE: _("The user's photo could no longer be downloaded."),
    ErrorCode.DELIVERY: _("Made and paid for, but Telegram did not take it."),
    ErrorCode.UNDELIVERED: _("Made and paid for, but not delivered: the user can fetch it with a button."),
    ErrorCode.INTERRUPTED: _("Its process stopped before it finished."),
    ErrorCode.CANCELLED: _("The user cancelled it."),
    ErrorCode.INTERNAL: _("An unexpected error in NanoBot: the server's log has the details."),
    ErrorCode.BUDGET: _("The spend limit was reached: refused before any paid call."),
}


def error_kind(code: str) -> str:
    """The sentence for an error code; an unknown code (from a newer version, say) as it is."""
    return str(ERROR_KINDS[code]) if code in ERROR_KINDS else code


ACTIONS = {
    "user.ban": _("banned %(target)s"),
    "user.unban": _("lifted the ban on %(target)s"),
    "user.tier": _("moved %(target)s to another tier"),
    "user.grant": _("granted extra images to %(target)s"),
    "tier.create": _("created the tier “%(target)s”"),
    "tier.update": _("changed the tier “%(target)s”"),
    "tier.delete": _("deleted the tier “%(target)s”"),
    "keyword.create": _("added the keyword “%(target)s”"),
    "keyword.update": _("changed the keyword “%(target)s”"),
    "keyword.delete": _("deleted the keyword “%(target)s”"),
    "broadcast.start": _("sent a broadcast"),
    "broadcast.resume": _("sent the rest of a broadcast"),
}

ACTION_NAMES = {
    "user.ban": _("Ban a user"),
    "user.unban": _("Lift a ban"),
    "user.tier": _("Change a user's tier"),
    "user.grant": _("Grant extra images"),
    "tier.create": _("Create a tier"),
    "tier.update": _("Change a tier"),
    "tier.delete": _("Delete a tier"),
    "keyword.create": _("Add a keyword"),
    "keyword.update": _("Change a keyword"),
    "keyword.delete": _("Delete a keyword"),
    "broadcast.start": _("Send a broadcast"),
    "broadcast.resume": _("Send the rest of a broadcast"),
}

FIELDS = {
    "tier": _("tier"),
    "remaining": _("images left today"),
    "granted": _("images granted"),
    "reason": _("reason"),
    "expires_at": _("until"),
    "name": _("name"),
    "daily_limit": _("images per day"),
    "max_resolution": _("largest size"),
    "cooldown_seconds": _("seconds between requests"),
    "max_concurrent_jobs": _("jobs at once"),
    "is_default": _("default tier"),
    "users_moved_to": _("users moved to"),
    "users_moved": _("users moved"),
    "phrase": _("phrase"),
    "note": _("note"),
    "is_active": _("active"),
    "text": _("message"),
    "sent": _("sent before"),
    "gone_through": _("users gone through before"),
}


@dataclass(frozen=True)
class Change:
    field: str
    before: str | None  # None: the field was not there before (a creation), or is gone after
    after: str | None


def action_name(action: str) -> str:
    return str(ACTION_NAMES.get(action, action))


def sentence(entry: AuditEntry) -> str:
    """What the staff member did, e.g. "banned @spammer" or "deleted the keyword “fake id”"."""
    if entry.action not in ACTIONS:
        return f"{entry.action} {entry.target}"
    # accounts.staff records a tier or keyword as "tier NAME": the sentence names the kind in the reader's language.
    kind = entry.action.partition(".")[0]
    target = entry.target.removeprefix(f"{kind} ") if kind in ("tier", "keyword") else entry.target
    return str(ACTIONS[entry.action]) % {"target": target}


def changes(entry: AuditEntry) -> list[Change]:
    """Each field the entry records, in the order the action wrote them, with its value before and after;
    a field that didn't change (a tier's cooldown when only its name did) is left out."""
    names = list(dict.fromkeys([*entry.before, *entry.after]))
    found = []
    for name in names:
        before, after = entry.before.get(name), entry.after.get(name)
        if name in entry.before and name in entry.after and before == after:
            continue
        found.append(
            Change(
                str(FIELDS.get(name, name)),
                value(before) if name in entry.before else None,
                value(after) if name in entry.after else None,
            )
        )
    return found


def value(raw: object) -> str:
    """A recorded value as people read it: yes/no, "none", a time in the zone with its name."""
    if raw is True:
        return str(_("yes"))
    if raw is False:
        return str(_("no"))
    if raw is None or raw == "":
        return str(_("none"))
    if isinstance(raw, str) and len(raw) >= 19 and raw[4:5] == "-" and raw[10:11] == "T":
        try:
            return when(datetime.fromisoformat(raw))
        except ValueError:
            pass
    return str(raw)
