from datetime import timedelta

from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from .models import TelegramUser, Tier

MAX_TELEGRAM_ID = 2**63 - 1  # a BigIntegerField; a longer number can't be anyone's id
# last_seen_at is refreshed at most this often, so a chatty user doesn't cost a write per message.
SEEN_RESOLUTION = timedelta(minutes=1)


def default_tier():
    return Tier.objects.filter(is_default=True).first() or Tier.objects.order_by("pk").first()


def user_touch(*, telegram_id, username="", first_name="", language_code=""):
    """The TelegramUser for this Telegram account, created on first contact and kept current."""
    # Telegram keeps names short and clean, but what arrives is made to fit the columns all the same
    # (PostgreSQL refuses NUL in text).
    profile = {
        field: (value or "").replace("\x00", "")[: TelegramUser._meta.get_field(field).max_length]
        for field, value in (("username", username), ("first_name", first_name), ("language_code", language_code))
    }
    now = timezone.now()
    user = TelegramUser.objects.select_related("tier").filter(telegram_id=telegram_id).first()
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


def search(users, q):
    """An all-digits q is a Telegram id (exact, so the unique index answers); anything else a name."""
    q = q.strip().removeprefix("@")
    if not q:
        return users
    if q.isascii() and q.isdigit():
        return users.filter(telegram_id=int(q)) if int(q) <= MAX_TELEGRAM_ID else users.none()
    return users.filter(Q(username__icontains=q) | Q(first_name__icontains=q))
