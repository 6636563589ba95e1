"""The generation log: filters, and one generation in detail with its image.

The list pages by keyset (created_at, pk) newest first, so a page is one indexed query however
many rows there are and however deep it goes; there is no total count, only next and previous.
"""

import mimetypes
import posixpath
from datetime import UTC, datetime, timedelta

from django import forms
from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils.translation import gettext_lazy as _

from accounts import days
from accounts.models import Resolution, TelegramUser
from botcore.models import Generation

from .access import staff_required
from .ranges import DateRangeForm

PAGE_SIZE = 50
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
ANY = [("", _("any"))]


class FilterForm(DateRangeForm):
    status = forms.ChoiceField(label=_("Status"), choices=ANY + Generation.Status.choices, required=False)
    user = forms.CharField(label=_("User"), required=False, max_length=65, help_text=_("Telegram id or @username"))
    model = forms.CharField(
        label=_("Model"), required=False, max_length=100, widget=forms.TextInput({"list": "models"})
    )
    resolution = forms.ChoiceField(label=_("Resolution"), choices=ANY + Resolution.choices, required=False)
    cache = forms.ChoiceField(label=_("Cache hit"), choices=ANY + [("yes", _("yes")), ("no", _("no"))], required=False)

    field_order = ["status", "user", "from", "to", "model", "resolution", "cache"]

    def clean_user(self):
        """The ids of the users meant (usually one, none when no one matches), or None when empty.

        Looked up first, so the generations are then found through the (user, created_at) index."""
        value = self.cleaned_data["user"].strip()
        if not value:
            return None
        if value.isascii() and value.isdigit() and int(value) < 2**63:
            users = TelegramUser.objects.filter(telegram_id=int(value))
        else:
            name = value.removeprefix("@")  # usernames start with a letter, so a number is never one
            if not (name[:1].isalpha() and all(c.isascii() and (c.isalnum() or c == "_") for c in name)):
                raise forms.ValidationError(_("Enter a Telegram id or an @username."))
            users = TelegramUser.objects.filter(username__iexact=name)
        return list(users.values_list("pk", flat=True)[:10])


def _filtered(data):
    generations = Generation.objects.select_related("user").defer("thought_signature", "references", "error_message")
    if data.get("status"):
        generations = generations.filter(status=data["status"])
    if data.get("user") is not None:
        generations = generations.filter(user_id__in=data["user"])
    if data.get("from"):
        generations = generations.filter(created_at__gte=days.start_of(data["from"]))
    if data.get("to"):
        generations = generations.filter(created_at__lt=days.start_of(data["to"] + timedelta(1)))
    if data.get("model"):
        generations = generations.filter(model=data["model"].strip())
    if data.get("resolution"):
        generations = generations.filter(resolution=data["resolution"])
    if data.get("cache"):
        generations = generations.filter(cache_hit=data["cache"] == "yes")
    return generations


def _cursor(generation):
    return f"{(generation.created_at - EPOCH) // MICROSECOND}_{generation.pk}"


def _parse_cursor(value):
    """(created_at, pk) from a cursor, or None when it is missing or malformed."""
    moment, _sep, pk = (value or "").partition("_")
    try:
        return EPOCH + int(moment) * MICROSECOND, int(pk)
    except (ValueError, OverflowError):
        return None


def page_of(generations, before=None, after=None):
    """Up to PAGE_SIZE generations older than `before` or newer than `after` (cursors), newest first;
    with whether there are more to either side."""
    if after:
        moment, pk = after
        newer = generations.filter(created_at__gte=moment).exclude(created_at=moment, pk__lte=pk)
        rows = list(newer.order_by("created_at", "pk")[: PAGE_SIZE + 1])
        if rows:
            return rows[:PAGE_SIZE][::-1], len(rows) > PAGE_SIZE, True
    if before:
        moment, pk = before
        generations = generations.filter(created_at__lte=moment).exclude(created_at=moment, pk__gte=pk)
    rows = list(generations.order_by("-created_at", "-pk")[: PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], bool(before), len(rows) > PAGE_SIZE


def _link(request, **cursor):
    params = request.GET.copy()
    for name in ("before", "after"):
        params.pop(name, None)
    params.update(cursor)
    return "?" + params.urlencode()


@staff_required
def generation_list(request):
    form = FilterForm(request.GET)
    form.is_valid()  # invalid fields are reported and left out; the valid ones still filter
    before, after = _parse_cursor(request.GET.get("before")), _parse_cursor(request.GET.get("after"))
    rows, has_previous, has_next = page_of(_filtered(form.cleaned_data), before=before, after=after)
    context = {
        "form": form,
        "generations": rows,
        "previous": _link(request, after=_cursor(rows[0])) if has_previous and rows else None,
        "next": _link(request, before=_cursor(rows[-1])) if has_next and rows else None,
        "unknown_user": form.cleaned_data.get("user") == [],
        "models": sorted({model for models in settings.IMAGE_PRICES.values() for model in models}),
    }
    return render(request, "dashboard/generations/list.html", context)


@staff_required
def generation_detail(request, pk):
    generation = get_object_or_404(Generation.objects.select_related("user__tier", "parent"), pk=pk)
    children = generation.children.only("pk", "kind", "status", "created_at", "parent").order_by("-created_at", "-pk")[
        :20
    ]
    return render(request, "dashboard/generations/detail.html", {"g": generation, "children": children})


@staff_required
def generation_image(request, pk):
    """The kept original, to staff only: MEDIA_ROOT is never served publicly."""
    generation = get_object_or_404(Generation.objects.only("pk", "original"), pk=pk)
    if not generation.original:
        raise Http404("No kept image")
    name = generation.original.name
    try:
        file = generation.original.storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The image is no longer kept") from None
    content_type = mimetypes.guess_type(name)[0]
    image = content_type in IMAGE_TYPES
    response = FileResponse(
        file,
        content_type=content_type if image else "application/octet-stream",
        as_attachment=not image,
        filename=posixpath.basename(name),
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


urlpatterns = [
    path("generations/", generation_list, name="generations"),
    path("generations/<int:pk>/", generation_detail, name="generation"),
    path("generations/<int:pk>/image/", generation_image, name="generation-image"),
]
