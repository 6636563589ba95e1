from datetime import timedelta
from typing import Any, TypeVar, cast

from django.db import IntegrityError
from django.db.models import Field, Q, QuerySet
from django.utils import timezone

from .models import TelegramUser, Tier

MAX_TELEGRAM_ID = 2**63 - 1  # a BigIntegerField; a longer number can't be anyone's id
# last_seen_at is refreshed at most this often, so a chatty user doesn't cost a write per message.
SEEN_RESOLUTION = timedelta(minutes=1)

# search() keeps what the caller's queryset carries (the API's annotations, say).
Users = TypeVar("Users", bound=QuerySet[TelegramUser])


def default_tier() -> Tier:
    return Tier.objects.filter(is_default=True).first() or Tier.objects.earliest("pk")


def user_touch(
    *, telegram_id: int, username: str | None = "", first_name: str | None = "", language_code: str | None = ""
) -> TelegramUser:
    """The TelegramUser for this Telegram account, created on first contact and kept current."""
    # Telegram keeps names short and clean, but what arrives is made to fit the columns all the same
    # (PostgreSQL refuses NUL in text).
    profile = {
        field: (value or "").replace("\x00", "")[: _max_length(field)]
        for field, value in (("username", username), ("first_name", first_name), ("language_code", language_code))
    }
    now = timezone.now()
    user: TelegramUser | None = TelegramUser.objects.select_related("tier").filter(telegram_id=telegram_id).first()
    if user is None:
        try:
            return TelegramUser.objects.create(telegram_id=telegram_id, tier=default_tier(), **profile)
        except IntegrityError:  # the same user's other update registered them first
            user = TelegramUser.objects.select_related("tier").get(telegram_id=telegram_id)
    changed = [field for field, value in profile.items() if getattr(user, field) != value]
    if changed or not user.is_active or now - user.last_seen_at > SEEN_RESOLUTION:
        for field in changed:
            setattr(user, field, profile[field])
        user.is_active = True
        user.last_seen_at = now
        user.save(update_fields=[*changed, "is_active", "last_seen_at"])
    return user


def _max_length(name: str) -> int | None:
    # get_field() may answer with a relation, which has no max_length; the profile's are text columns.
    return cast("Field[Any, Any]", TelegramUser._meta.get_field(name)).max_length


def search(users: Users, q: str) -> Users:
    """An all-digits q is a Telegram id (exact, so the unique index answers); anything else a name."""
    q = q.strip().removeprefix("@")
    if not q:
        return users
    if q.isascii() and q.isdigit():
        return users.filter(telegram_id=int(q)) if int(q) <= MAX_TELEGRAM_ID else users.none()
    return users.filter(Q(username__icontains=q) | Q(first_name__icontains=q))
