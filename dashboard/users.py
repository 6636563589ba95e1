"""Users: search, filter and page through them; one user's usage and the actions on them."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from accounts import credits, days, moderation, quota, staff
from accounts.models import Ban, QuotaUsage, TelegramUser, Tier
from accounts.users import default_tier, search

from . import thumbnails
from .access import staff_required

PER_PAGE = 50
HISTORY_DAYS = 30
RECENT_GENERATIONS = 20
LEDGER_ENTRIES = 50

YES_NO = [("", gettext_lazy("Any")), ("yes", gettext_lazy("Yes")), ("no", gettext_lazy("No"))]
# The columns the list sorts by, and their orderings: only indexed ones, so a sorted page stays fast
# however many users there are; pk breaks ties. (The id follows created_at, so "joined" needs no index
# of its own.) A leading "-" reverses one: "-username" is Z to A.
SORTS = {
    "telegram_id": ("telegram_id",),
    "username": ("username", "pk"),
    "joined": ("pk",),
    "last_seen": ("last_seen_at", "pk"),
}
NEWEST_FIRST = {"joined", "last_seen"}  # a first click on these shows the latest first
DEFAULT_SORT = "-joined"
COLUMNS = [
    ("telegram_id", gettext_lazy("Telegram id")),
    ("username", gettext_lazy("Username")),
    (None, gettext_lazy("First name")),
    (None, gettext_lazy("Tier")),
    (None, gettext_lazy("State")),
    ("joined", gettext_lazy("Joined")),
    ("last_seen", gettext_lazy("Last seen")),
]


class FilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=128,
        label=gettext_lazy("Search"),
        widget=forms.TextInput(attrs={"type": "search", "placeholder": gettext_lazy("Telegram id, @username or name")}),
    )
    tier = forms.ModelChoiceField(Tier.objects.all(), required=False, empty_label=gettext_lazy("Any tier"))
    banned = forms.ChoiceField(choices=YES_NO, required=False, label=gettext_lazy("Banned"))
    active = forms.ChoiceField(choices=YES_NO, required=False, label=gettext_lazy("Active"))
    # Chosen by the column headers' links; kept here so that filtering keeps the order.
    sort = forms.ChoiceField(
        choices=[(f"{way}{column}", column) for column in SORTS for way in ("", "-")],
        required=False,
        widget=forms.HiddenInput,
    )


def ordering(sort):
    """The order_by() fields of a sort ("username", "-joined")."""
    fields = SORTS[sort.removeprefix("-")]
    return [f"-{field}" for field in fields] if sort.startswith("-") else list(fields)


def headers(sort):
    """The list's column headers: each one's label and, for a column it sorts by, the sort its link asks
    for (the current one reversed, on the column sorted by) and the way it is sorted now, if it is."""
    current, descending = sort.removeprefix("-"), sort.startswith("-")
    for column, label in COLUMNS:
        if column is None:
            yield {"label": label}
        elif column == current:
            way = "descending" if descending else "ascending"
            yield {"label": label, "sort": column if descending else f"-{column}", "sorted": way}
        else:
            yield {"label": label, "sort": f"-{column}" if column in NEWEST_FIRST else column}


class TierForm(forms.Form):
    tier = forms.ModelChoiceField(Tier.objects.all(), empty_label=None, label=gettext_lazy("Tier"))


class GrantForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=1000, initial=1, label=gettext_lazy("Extra images for today"))


class CreditsForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=100_000, initial=10, label=gettext_lazy("Credits"))
    note = forms.CharField(
        required=False,
        max_length=200,
        label=gettext_lazy("Note"),
        help_text=gettext_lazy("Why, for the ledger (e.g. a support case)."),
    )


class BanForm(forms.Form):
    reason = forms.CharField(max_length=staff.MAX_REASON_CHARS, label=gettext_lazy("Reason"))
    expires_at = forms.DateTimeField(
        required=False,
        label=gettext_lazy("Until"),
        help_text=gettext_lazy("Empty: until lifted."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


def filtered_users(data):
    """Users matching the list's (already cleaned) filters, each with `banned` and its tier."""
    banned = Exists(Ban.objects.active().filter(user=OuterRef("pk")))
    users = TelegramUser.objects.select_related("tier").annotate(banned=banned)
    users = search(users, data.get("q") or "")
    if data.get("tier"):
        users = users.filter(tier=data["tier"])
    if data.get("banned"):
        users = users.filter(banned=data["banned"] == "yes")
    if data.get("active"):
        users = users.filter(is_active=data["active"] == "yes")
    return users.order_by(*ordering(data.get("sort") or DEFAULT_SORT))


@staff_required
def user_list(request):
    form = FilterForm(request.GET)
    form.is_valid()  # an invalid filter is left out of cleaned_data, so it is simply ignored
    page = Paginator(filtered_users(form.cleaned_data), PER_PAGE).get_page(request.GET.get("page"))
    columns = list(headers(form.cleaned_data.get("sort") or DEFAULT_SORT))
    return render(request, "dashboard/users/list.html", {"form": form, "page": page, "columns": columns})


def history(user, day):
    """Images used on each of the last HISTORY_DAYS quota days, newest first, with 0 for quiet days."""
    first = day - timedelta(days=HISTORY_DAYS - 1)
    rows = {row.day: row for row in QuotaUsage.objects.filter(user=user, day__gte=first, day__lte=day)}
    shown = [day - timedelta(days=n) for n in range(HISTORY_DAYS)]
    return [(d, rows[d].used if d in rows else 0, rows[d].granted if d in rows else 0) for d in shown]


@staff_required
def user_detail(request, pk):
    user = get_object_or_404(TelegramUser.objects.select_related("tier", "tier_after"), pk=pk)
    day = days.today()
    used = history(user, day)
    ledger = user.ledger.select_related("payment", "generation", "actor").order_by("-created_at", "-pk")
    context = {
        "subject": user,  # not "user": that is the signed-in staff member in every template
        "day": day,
        "usage": QuotaUsage.objects.filter(user=user, day=day).first(),
        "remaining": quota.remaining(user, day),
        "history": used,
        "history_total": sum(images for _day, images, _granted in used),
        "active_ban": moderation.active_ban(user),
        "bans": user.bans.select_related("created_by", "lifted_by").order_by("-created_at"),
        "generations": thumbnails.laid_out(user.generations.order_by("-created_at", "-pk")[:RECENT_GENERATIONS]),
        "tier_form": TierForm(initial={"tier": user.tier}),
        "grant_form": GrantForm(),
        "credits_form": CreditsForm(),
        "ban_form": BanForm(),
        "lots": credits.lots(user),
        "ledger": ledger[:LEDGER_ENTRIES],
        "tier_after": (user.tier_after or default_tier()) if user.tier_until else None,
        "time_zone": settings.TIME_ZONE,
    }
    return render(request, "dashboard/users/detail.html", context)


def act(request, pk, form_class, action):
    """Run one staff action from a POSTed form; any refusal becomes an error message and changes nothing."""
    user = get_object_or_404(TelegramUser.objects.select_related("tier"), pk=pk)
    form = form_class(request.POST) if form_class else None
    if form is not None and not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(
                    request, _("%(field)s: %(error)s") % {"field": label, "error": error} if label else error
                )
    else:
        try:
            done = action(user, form.cleaned_data if form else {})
        except staff.StaffError as refusal:
            messages.error(request, str(refusal))
        else:
            if done:
                messages.success(request, done)
    return redirect("dashboard:user", pk=user.pk)


@staff_required
@require_POST
def change_tier(request, pk):
    def action(user, data):
        staff.change_tier(actor=request.user, user=user, tier=data["tier"])
        return _("%(user)s is now on %(tier)s.") % {"user": user, "tier": data["tier"]}

    return act(request, pk, TierForm, action)


@staff_required
@require_POST
def grant(request, pk):
    def action(user, data):
        staff.grant_images(actor=request.user, user=user, count=data["count"])
        return _("Granted %(count)d extra images for today.") % {"count": data["count"]}

    return act(request, pk, GrantForm, action)


@staff_required
@require_POST
def grant_credits(request, pk):
    def action(user, data):
        staff.grant_credits(actor=request.user, user=user, count=data["count"], note=data["note"])
        return ngettext("Granted %(count)d credit.", "Granted %(count)d credits.", data["count"]) % {
            "count": data["count"]
        }

    return act(request, pk, CreditsForm, action)


@staff_required
@require_POST
def ban(request, pk):
    def action(user, data):
        staff.ban_user(actor=request.user, user=user, reason=data["reason"], expires_at=data["expires_at"])
        return _("%(user)s is banned.") % {"user": user}

    return act(request, pk, BanForm, action)


@staff_required
@require_POST
def unban(request, pk):
    def action(user, data):
        staff.unban_user(actor=request.user, user=user)
        return _("The ban on %(user)s is lifted.") % {"user": user}

    return act(request, pk, None, action)


urlpatterns = [
    path("users/", user_list, name="users"),
    path("users/<int:pk>/", user_detail, name="user"),
    path("users/<int:pk>/tier/", change_tier, name="user-tier"),
    path("users/<int:pk>/grant/", grant, name="user-grant"),
    path("users/<int:pk>/credits/", grant_credits, name="user-credits"),
    path("users/<int:pk>/ban/", ban, name="user-ban"),
    path("users/<int:pk>/unban/", unban, name="user-unban"),
]
