"""What staff change, from the dashboard or the JSON API: each action checks, changes and writes
one audit entry in one transaction, so both ways in behave the same and nothing goes unrecorded."""

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import credits, moderation, quota
from .models import AuditEntry, Ban, BannedKeyword, Broadcast, CreditPack, LedgerEntry, TelegramUser, Tier

MAX_REASON_CHARS = 500
# A ban "until" further off than this is a typo, or means "until lifted" (an empty expiry).
LONGEST_BAN = timedelta(days=100 * 365)
# A broadcast queued or sending for longer than this has lost its sender (a web process restarted
# mid-send; 100,000 users take about an hour at Telegram's 30 messages a second).
BROADCAST_GIVEN_UP_AFTER = timedelta(hours=6)
TIER_FIELDS = ["name", "daily_limit", "max_resolution", "cooldown_seconds", "max_concurrent_jobs", "is_default"]
KEYWORD_FIELDS = ["phrase", "is_active", "note"]


class StaffError(Exception):
    """An action that can't be done as asked; the message says why, for the staff member, and
    `field` names the input at fault, when one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def record(
    actor: User | None,
    action: str,
    target: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor else "system",
        action=action,
        target=str(target)[:200],
        before=before or {},
        after=after or {},
    )


@transaction.atomic
def change_tier(*, actor: User | None, user: TelegramUser, tier: Tier) -> TelegramUser:
    if tier.pk == user.tier_id:
        raise StaffError(_("%(user)s is already on %(tier)s.") % {"user": user, "tier": tier}, "tier")
    before = user.tier.name
    user.tier = tier
    user.tier_until = user.tier_after = None  # staff's choice stands: a pack's upgrade doesn't undo it later
    user.save(update_fields=["tier", "tier_until", "tier_after"])
    record(actor, "user.tier", user, {"tier": before}, {"tier": tier.name})
    return user


@transaction.atomic
def grant_images(*, actor: User | None, user: TelegramUser, count: int) -> None:
    if count < 1:
        raise StaffError(_("Grant at least one image."), "count")
    before = quota.remaining(user)
    quota.grant(user, count)
    record(actor, "user.grant", user, {"remaining": before}, {"remaining": quota.remaining(user), "granted": count})


@transaction.atomic
def grant_credits(*, actor: User | None, user: TelegramUser, count: int, note: str = "") -> None:
    """Give `user` `count` credits (images beyond the daily free ones), expiring as bought ones do."""
    if count < 1:
        raise StaffError(_("Grant at least one credit."), "credits")
    before = credits.recount(user)
    credits.add(user, count, LedgerEntry.Kind.GRANT, actor=actor, note=note[:200], expires_at=credits.expiry())
    record(actor, "user.credits", user, {"credits": before}, {"credits": before + count, "granted": count})


@transaction.atomic
def ban_user(*, actor: User | None, user: TelegramUser, reason: str, expires_at: datetime | None = None) -> Ban:
    reason = reason.strip()
    if not reason:
        raise StaffError(_("Give the reason for the ban."), "reason")
    if len(reason) > MAX_REASON_CHARS:
        raise StaffError(
            _("A reason can be at most %(count)d characters long.") % {"count": MAX_REASON_CHARS}, "reason"
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise StaffError(_("A ban's expiry must be in the future."), "expires_at")
    if expires_at is not None and expires_at > timezone.now() + LONGEST_BAN:
        raise StaffError(
            _("A ban can last at most 100 years: leave the expiry empty to ban until lifted."), "expires_at"
        )
    ban = Ban.objects.create(user=user, reason=reason, expires_at=expires_at, created_by=actor)
    after = {"reason": reason, "expires_at": expires_at.isoformat() if expires_at else None}
    record(actor, "user.ban", user, {}, after)
    return ban


@transaction.atomic
def lift_ban(*, actor: User | None, ban: Ban) -> bool:
    """Lift one ban; False when it was already lifted (by someone else a moment ago, say)."""
    now = timezone.now()
    if not Ban.objects.filter(pk=ban.pk, lifted_at__isnull=True).update(lifted_at=now, lifted_by=actor):
        return False
    ban.lifted_at, ban.lifted_by = now, actor
    record(actor, "user.unban", ban.user, {"reason": ban.reason}, {})
    return True


@transaction.atomic
def unban_user(*, actor: User | None, user: TelegramUser) -> list[Ban]:
    """Lift every ban in force on `user`, so they can really generate again."""
    lifted = [ban for ban in Ban.objects.active().filter(user=user) if lift_ban(actor=actor, ban=ban)]
    if not lifted:
        raise StaffError(_("%(user)s has no ban in force.") % {"user": user})
    return lifted


def version(instance: models.Model, names: list[str]) -> str:
    """A digest of the values of `names`: a form keeps the one it showed, so that saving it can tell
    whether someone else changed the record in between (and not silently undo their change)."""
    shown = json.dumps(field_values(instance, names), sort_keys=True, default=str)
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


def unchanged_since(instance: models.Model, names: list[str], seen: str | None) -> None:
    if seen and seen != version(instance, names):  # no seen: not from a form that showed it
        raise StaffError(
            _("Someone else changed this since you opened it: reload the page to see it, then save again.")
        )


@transaction.atomic
def save_tier(*, actor: User | None, tier: Tier | None = None, seen: str | None = None, **fields: Any) -> Tier:
    """Create a tier (tier=None) or change one; making it the default takes that from the other.
    `seen`: the version() of the tier the change was made on, when it was shown to staff."""
    defaults = Tier.objects.filter(is_default=True).values_list("pk", flat=True) if fields.get("is_default") else []
    locked = _lock_tiers(tier.pk if tier else None, *defaults)
    if tier is not None:
        tier = locked[tier.pk]
        unchanged_since(tier, TIER_FIELDS, seen)
    before = field_values(tier, TIER_FIELDS) if tier else {}
    tier = tier or Tier()
    for name, value in fields.items():
        setattr(tier, name, value)
    if tier.is_default:
        Tier.objects.exclude(pk=tier.pk).filter(is_default=True).update(is_default=False)
    tier.save()
    record(
        actor, "tier.update" if before else "tier.create", f"tier {tier.name}", before, field_values(tier, TIER_FIELDS)
    )
    return tier


@transaction.atomic
def delete_tier(*, actor: User | None, tier: Tier, move_to: Tier | None = None) -> None:
    """Delete a tier; its users move to `move_to`, which is required when it has any."""
    tier = _lock_tiers(tier.pk, move_to.pk if move_to else None)[tier.pk]  # broadcasts.start takes it too
    sending = Broadcast.objects.filter(
        tier=tier,
        status__in=[Broadcast.Status.QUEUED, Broadcast.Status.SENDING],
        created_at__gt=timezone.now() - BROADCAST_GIVEN_UP_AFTER,
    )
    if sending.exists():
        raise StaffError(_("A broadcast to this tier is still being sent: delete the tier once it is done."))
    selling = list(CreditPack.objects.filter(tier=tier).values_list("name", flat=True))
    if selling:
        raise StaffError(
            _("Credit packs upgrade to this tier: %(packs)s. Change them first.") % {"packs": ", ".join(selling)}
        )
    users = TelegramUser.objects.filter(tier=tier)
    moved = users.count()
    if moved and (move_to is None or move_to.pk == tier.pk):
        raise StaffError(
            _("%(count)d users are on this tier: choose the tier they move to.") % {"count": moved}, "move_to"
        )
    if moved:
        users.update(tier=move_to)
    before = field_values(tier, TIER_FIELDS)
    tier.delete()  # first: only one tier may be the default at any moment
    if before["is_default"] and move_to is not None:
        Tier.objects.filter(pk=move_to.pk).update(is_default=True)
    after = {"users_moved_to": move_to.name, "users_moved": moved} if move_to else {}
    record(actor, "tier.delete", f"tier {before['name']}", before, after)


def _lock_tiers(*pks: int | None) -> dict[int, Tier]:
    """{pk: tier} of these tiers, locked until commit; always in pk order, so two staff changing
    the same tiers at once wait for each other instead of deadlocking."""
    wanted = [pk for pk in pks if pk is not None]
    return {tier.pk: tier for tier in Tier.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}


def check_phrase(phrase: str, keyword: BannedKeyword | None = None) -> str:
    """The phrase as it will be kept, or StaffError when it can't be a keyword (`keyword`'s new one)."""
    phrase = phrase.strip()
    if keyword is not None and phrase == keyword.phrase:
        return phrase  # unchanged: switching a keyword off must work whatever its phrase
    needle = moderation.normalize(phrase)
    if not needle:
        raise StaffError(_("The phrase needs at least one letter or digit."), "phrase")
    others = BannedKeyword.objects.values_list("phrase", flat=True)
    if keyword is not None:
        others = others.exclude(pk=keyword.pk)
    for other in others:
        if moderation.normalize(other) == needle:
            raise StaffError(_("This is the same as the keyword “%(phrase)s”.") % {"phrase": other}, "phrase")
    return phrase


@transaction.atomic
def save_keyword(
    *, actor: User | None, keyword: BannedKeyword | None = None, seen: str | None = None, **fields: Any
) -> BannedKeyword:
    """Add a keyword (keyword=None) or change one; `seen` as for save_tier."""
    if keyword is not None:
        keyword = BannedKeyword.objects.select_for_update().get(pk=keyword.pk)
        unchanged_since(keyword, KEYWORD_FIELDS, seen)
    if "phrase" in fields:
        fields["phrase"] = check_phrase(fields["phrase"], keyword)
    before = field_values(keyword, KEYWORD_FIELDS) if keyword else {}
    keyword = keyword or BannedKeyword()
    for name, value in fields.items():
        setattr(keyword, name, value)
    keyword.save()
    # This process sees the change at once (the prompt test box); the bot within the cache's 30 s.
    transaction.on_commit(lambda: cache.delete(moderation.KEYWORDS_CACHE_KEY))
    action = "keyword.update" if before else "keyword.create"
    record(actor, action, f"keyword {keyword.phrase}", before, field_values(keyword, KEYWORD_FIELDS))
    return keyword


@transaction.atomic
def delete_keyword(*, actor: User | None, keyword: BannedKeyword) -> None:
    """Delete a keyword: prompts with it are let through again (at once in this process, as for save_keyword)."""
    locked = BannedKeyword.objects.select_for_update().filter(pk=keyword.pk).first()
    if locked is None:  # another staff member deleted it a moment ago
        raise StaffError(_("The keyword “%(phrase)s” was already deleted.") % {"phrase": keyword.phrase})
    before = field_values(locked, KEYWORD_FIELDS)
    locked.delete()
    transaction.on_commit(lambda: cache.delete(moderation.KEYWORDS_CACHE_KEY))
    record(actor, "keyword.delete", f"keyword {before['phrase']}", before, {})


def field_values(instance: models.Model, names: list[str]) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in names}
