"""The JSON API's users, stats and banned keywords. Every change goes through accounts.staff, so
it is checked and audited exactly like the same change made in the dashboard."""

from datetime import datetime
from typing import Annotated

from django.db import IntegrityError
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import ValidationError
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import StringConstraints

from . import moderation, quota, staff
from .models import Ban, BannedKeyword, TelegramUser, Tier
from .users import search

router = Router(tags=["users"])
keywords = Router(tags=["keywords"])


class FieldError(Schema):
    type: str
    loc: list[str | int] = Field(description='Where, e.g. ["body", "payload", "expires_at"].')
    msg: str


class Invalid(Schema):
    """Schema errors and refusals of the staff services alike: 422 with the field named."""

    detail: list[FieldError]


REFUSAL = {422: Invalid}


class Page(LimitOffsetPagination):
    """limit (1-200, default 50) and offset; the answer is {"items": [...], "count": total}."""

    class Input(Schema):
        limit: int = Field(50, ge=1, le=200)
        offset: int = Field(0, ge=0)


def invalid(field, message):
    """A 422 naming the body's field, shaped like ninja's schema errors: {"detail": [{"type", "loc", "msg"}]}."""
    return ValidationError([{"type": "value_error", "loc": ["body", "payload", field], "msg": message}])


# Users


class BanOut(Schema):
    reason: str
    created_at: datetime
    expires_at: datetime | None
    created_by: str | None = Field(None, alias="created_by.username")


class UserOut(Schema):
    telegram_id: int
    username: str
    first_name: str
    language_code: str
    tier: str = Field(alias="tier.name")
    resolution: str
    aspect_ratio: str
    is_active: bool = Field(description="False once the user has blocked the bot.")
    banned: bool
    created_at: datetime
    last_seen_at: datetime


class UserDetail(UserOut):
    ban: BanOut | None = Field(description="The active ban, if any.")
    daily_limit: int | None = Field(alias="tier.daily_limit", description="Null: unlimited.")
    remaining_today: int | None = Field(description="Images the user can still start today; null: unlimited.")
    credits: int = Field(description="Images bought or granted, beyond the daily free ones (see the ledger).")
    tier_until: datetime | None = Field(description="A pack's tier upgrade ends then; null: none running.")

    @staticmethod
    def resolve_ban(user):
        return moderation.active_ban(user)

    @staticmethod
    def resolve_remaining_today(user):
        return quota.remaining(user)


class UserFilter(Schema):
    q: str = Field("", description="An exact Telegram id (all digits), or part of the username or first name.")
    tier: str = Field("", description="Tier name.")
    banned: bool | None = None


def users():
    active_ban = Ban.objects.active().filter(user=OuterRef("pk"))
    return TelegramUser.objects.select_related("tier").annotate(banned=Exists(active_ban))


def get_user(telegram_id):
    return get_object_or_404(users(), telegram_id=telegram_id)


@router.get("/users", response=list[UserOut], summary="List users")
@paginate(Page)
def list_users(request, filters: Query[UserFilter]):
    """Newest first. Filter by `q`, `tier` and `banned`; paginate with `limit` (at most 200) and `offset`."""
    found = users().order_by("-created_at", "-pk")
    found = search(found, filters.q)
    if filters.tier:
        found = found.filter(tier__name=filters.tier)
    if filters.banned is not None:
        found = found.filter(banned=filters.banned)
    return found


@router.get("/users/{telegram_id}", response=UserDetail, summary="One user")
def user_detail(request, telegram_id: int):
    return get_user(telegram_id)


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=staff.MAX_REASON_CHARS)]
Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TierIn(Schema):
    tier: str = Field(description="The name of an existing tier.")


class BanIn(Schema):
    reason: Reason
    expires_at: datetime | None = Field(None, description="Must be in the future; null bans until lifted.")


class GrantIn(Schema):
    count: int = Field(ge=1, le=1000, description="Extra images for today, on top of the tier's limit.")


@router.post("/users/{telegram_id}/tier", response={200: UserDetail, **REFUSAL}, summary="Move to a tier")
def change_tier(request, telegram_id: int, payload: TierIn):
    """422 when no tier has that name, or the user is on it already."""
    user = get_user(telegram_id)
    tier = Tier.objects.filter(name=payload.tier).first()
    if tier is None:
        raise invalid("tier", _("No tier is named “%(name)s”.") % {"name": payload.tier})
    staff.change_tier(actor=request.auth, user=user, tier=tier)
    return get_user(telegram_id)


@router.post("/users/{telegram_id}/ban", response={200: UserDetail, **REFUSAL}, summary="Ban")
def ban(request, telegram_id: int, payload: BanIn):
    """A time without a zone is read in TIME_ZONE. 422 when `expires_at` is not in the future, or
    more than 100 years away."""
    user = get_user(telegram_id)
    expires_at = payload.expires_at
    if expires_at is not None and timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at)
    staff.ban_user(actor=request.auth, user=user, reason=payload.reason, expires_at=expires_at)
    return get_user(telegram_id)


@router.post("/users/{telegram_id}/unban", response={200: UserDetail, **REFUSAL}, summary="Lift bans")
def unban(request, telegram_id: int):
    """Lifts every ban in force on the user (each one audited); 422 when there is none."""
    staff.unban_user(actor=request.auth, user=get_user(telegram_id))
    return get_user(telegram_id)


@router.post("/users/{telegram_id}/grant", response={200: UserDetail, **REFUSAL}, summary="Grant extra images")
def grant(request, telegram_id: int, payload: GrantIn):
    staff.grant_images(actor=request.auth, user=get_user(telegram_id), count=payload.count)
    return get_user(telegram_id)


# Banned keywords


class KeywordOut(Schema):
    id: int
    phrase: str
    note: str
    is_active: bool
    created_at: datetime


class KeywordIn(Schema):
    phrase: Phrase
    note: str = Field("", max_length=200)
    is_active: bool = True


class KeywordPatch(Schema):
    phrase: Phrase | None = None
    note: str | None = Field(None, max_length=200)
    is_active: bool | None = None


class PromptIn(Schema):
    prompt: str = Field(min_length=1, max_length=4000)


class MatchOut(Schema):
    matched: bool
    keyword: KeywordOut | None = Field(description="The active keyword the prompt contains, if any.")


def save_keyword(request, keyword=None, **fields):
    try:
        return staff.save_keyword(actor=request.auth, keyword=keyword, **fields)
    except IntegrityError as clash:  # the same phrase, saved by someone else a moment ago
        raise invalid("phrase", _("A keyword with this phrase already exists.")) from clash


@keywords.get("/keywords", response=list[KeywordOut], summary="List banned keywords")
@paginate(Page)
def list_keywords(request, active: bool | None = None):
    """Alphabetical; `active` filters on is_active."""
    found = BannedKeyword.objects.all()
    return found if active is None else found.filter(is_active=active)


@keywords.post("/keywords", response={201: KeywordOut, **REFUSAL}, summary="Add a banned keyword")
def create_keyword(request, payload: KeywordIn):
    """Prompts containing the phrase (compared case-, accent- and punctuation-blind) are refused. 422 on a
    duplicate phrase."""
    return Status(201, save_keyword(request, **payload.model_dump()))


@keywords.get("/keywords/{int:keyword_id}", response=KeywordOut, summary="One banned keyword")
def keyword_detail(request, keyword_id: int):
    return get_object_or_404(BannedKeyword, pk=keyword_id)


@keywords.patch("/keywords/{int:keyword_id}", response={200: KeywordOut, **REFUSAL}, summary="Change a banned keyword")
def update_keyword(request, keyword_id: int, payload: KeywordPatch):
    """Send only the fields to change. Keywords are never deleted (the audit log names them): to stop
    one applying, send `{"is_active": false}`."""
    keyword = get_object_or_404(BannedKeyword, pk=keyword_id)
    fields = {name: value for name, value in payload.model_dump(exclude_unset=True).items() if value is not None}
    return save_keyword(request, keyword, **fields)


@keywords.post("/keywords/test", response=MatchOut, summary="Test a prompt")
def test_prompt(request, payload: PromptIn):
    """Which active keyword, if any, would refuse this prompt, as the bot checks it."""
    phrase = moderation.matching_keyword(payload.prompt)
    keyword = BannedKeyword.objects.filter(phrase=phrase).first() if phrase else None
    return {"matched": phrase is not None, "keyword": keyword}
