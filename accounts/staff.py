"""What staff change, from the dashboard or the JSON API: each action checks, changes and writes
one audit entry in one transaction, so both ways in behave the same and nothing goes unrecorded."""

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import moderation, quota
from .models import AuditEntry, Ban, BannedKeyword, TelegramUser, Tier

TIER_FIELDS = ["name", "daily_limit", "max_resolution", "cooldown_seconds", "max_concurrent_jobs", "is_default"]
KEYWORD_FIELDS = ["phrase", "is_active", "note"]


class StaffError(Exception):
    """An action that can't be done as asked; the message says why, for the staff member."""


def record(actor, action, target, before=None, after=None):
    return AuditEntry.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor else "system",
        action=action,
        target=str(target)[:200],
        before=before or {},
        after=after or {},
    )


@transaction.atomic
def change_tier(*, actor, user, tier):
    before = user.tier.name
    user.tier = tier
    user.save(update_fields=["tier"])
    record(actor, "user.tier", user, {"tier": before}, {"tier": tier.name})
    return user


@transaction.atomic
def grant_images(*, actor, user, count):
    if count < 1:
        raise StaffError(_("Grant at least one image."))
    before = quota.remaining(user)
    quota.grant(user, count)
    record(actor, "user.grant", user, {"remaining": before}, {"remaining": quota.remaining(user), "granted": count})


@transaction.atomic
def ban_user(*, actor, user, reason, expires_at=None):
    if expires_at is not None and expires_at <= timezone.now():
        raise StaffError(_("A ban's expiry must be in the future."))
    ban = Ban.objects.create(user=user, reason=reason, expires_at=expires_at, created_by=actor)
    after = {"reason": reason, "expires_at": expires_at.isoformat() if expires_at else None}
    record(actor, "user.ban", user, {}, after)
    return ban


@transaction.atomic
def lift_ban(*, actor, ban):
    if ban.lifted_at is not None:
        return ban
    ban.lifted_at, ban.lifted_by = timezone.now(), actor
    ban.save(update_fields=["lifted_at", "lifted_by"])
    record(actor, "user.unban", ban.user, {"reason": ban.reason}, {})
    return ban


@transaction.atomic
def save_tier(*, actor, tier=None, **fields):
    """Create a tier (tier=None) or change one; making it the default takes that from the other."""
    before = _fields(tier, TIER_FIELDS) if tier else {}
    tier = tier or Tier()
    for name, value in fields.items():
        setattr(tier, name, value)
    if tier.is_default:
        Tier.objects.exclude(pk=tier.pk).filter(is_default=True).update(is_default=False)
    tier.save()
    record(actor, "tier.update" if before else "tier.create", f"tier {tier.name}", before, _fields(tier, TIER_FIELDS))
    return tier


@transaction.atomic
def delete_tier(*, actor, tier, move_to=None):
    """Delete a tier; its users move to `move_to`, which is required when it has any."""
    users = TelegramUser.objects.filter(tier=tier)
    moved = users.count()
    if moved and (move_to is None or move_to.pk == tier.pk):
        raise StaffError(_("%(count)d users are on this tier: choose the tier they move to.") % {"count": moved})
    if moved:
        users.update(tier=move_to)
    before = _fields(tier, TIER_FIELDS)
    tier.delete()  # first: only one tier may be the default at any moment
    if before["is_default"] and move_to is not None:
        Tier.objects.filter(pk=move_to.pk).update(is_default=True)
    after = {"users_moved_to": move_to.name, "users_moved": moved} if move_to else {}
    record(actor, "tier.delete", f"tier {before['name']}", before, after)


@transaction.atomic
def save_keyword(*, actor, keyword=None, **fields):
    before = _fields(keyword, KEYWORD_FIELDS) if keyword else {}
    keyword = keyword or BannedKeyword()
    for name, value in fields.items():
        setattr(keyword, name, value)
    keyword.save()
    # This process sees the change at once (the prompt test box); the bot within the cache's 30 s.
    transaction.on_commit(lambda: cache.delete(moderation.KEYWORDS_CACHE_KEY))
    action = "keyword.update" if before else "keyword.create"
    record(actor, action, f"keyword {keyword.phrase}", before, _fields(keyword, KEYWORD_FIELDS))
    return keyword


def _fields(instance, names):
    return {name: getattr(instance, name) for name in names}
