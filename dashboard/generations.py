"""The generation log: filters, totals, a CSV of it, and one generation in detail with its image.

The list pages by keyset (keyset.py) on (created_at, pk), newest or oldest first. Its total comes from
the day summaries, or, for one user, their rows through the (user, created_at) index: never a count over
the whole log.
"""

import mimetypes
import posixpath
from datetime import timedelta
from decimal import Decimal

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Count, Sum
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import days
from accounts.models import Resolution
from botcore import summaries
from botcore.models import Generation

from . import keyset, spreadsheets, thumbnails
from .access import staff_required
from .filters import UserField
from .ranges import DateRangeForm

CSV_BATCH = 2000
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
ANY = [("", _("any"))]


class FilterForm(DateRangeForm):
    status = forms.ChoiceField(label=_("Status"), choices=ANY + Generation.Status.choices, required=False)
    user = UserField()
    model = forms.CharField(
        label=_("Model"), required=False, max_length=100, widget=forms.TextInput({"list": "models"})
    )
    resolution = forms.ChoiceField(label=_("Resolution"), choices=ANY + Resolution.choices, required=False)
    cache = forms.ChoiceField(label=_("Cache hit"), choices=ANY + [("yes", _("yes")), ("no", _("no"))], required=False)
    # Only orders an index keeps: created_at's, alone or after the column filtered on.
    sort = forms.ChoiceField(
        label=_("Order"), choices=[("", _("newest first")), ("oldest", _("oldest first"))], required=False
    )

    field_order = ["status", "user", "from", "to", "model", "resolution", "cache", "sort"]


def _matching(rows, data):
    """`rows` that the status, model, resolution and cache filters match: generations or day
    summaries, which have the same columns."""
    if data.get("status"):
        rows = rows.filter(status=data["status"])
    if data.get("model"):
        rows = rows.filter(model=data["model"].strip())
    if data.get("resolution"):
        rows = rows.filter(resolution=data["resolution"])
    if data.get("cache"):
        rows = rows.filter(cache_hit=data["cache"] == "yes")
    return rows


def _filtered(data):
    generations = Generation.objects.select_related("user").defer("thought_signature", "references", "error_message")
    if data.get("user") is not None:
        generations = generations.filter(user_id__in=data["user"])
    if data.get("from"):
        generations = generations.filter(created_at__gte=days.start_of(data["from"]))
    if data.get("to"):
        generations = generations.filter(created_at__lt=days.start_of(data["to"] + timedelta(1)))
    return _matching(generations, data)


def totals(data):
    """How many generations the filters match and what they cost: {"images", "spend", "statuses": [(status's
    label, images)]}. One user's are counted through the (user, created_at) index; anyone's are read from
    the day summaries (which have every other filter's column) and the open days' generations."""
    if data.get("user") is not None:
        return _totals_of([_by_status(_filtered(data), Count("pk"), Sum("cost_usd"))])
    first = data.get("from") or _first_day()
    last = data.get("to") or days.today()
    summed, open_from = summaries.closed(first, last)
    parts = [_by_status(_matching(summed, data), Sum("images"), Sum("spend"))]
    opened = _filtered(data).filter(created_at__gte=days.start_of(open_from))
    parts.append(_by_status(opened, Count("pk"), Sum("cost_usd")))
    return _totals_of(parts)


def _first_day():
    first = Generation.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return days.today(first)  # today when there are none


def _by_status(rows, images, spend):
    return rows.order_by().values_list("status").annotate(images=images, spend=spend)


def _totals_of(parts):
    images, spend = {}, Decimal(0)
    for part in parts:
        for status, count, cost in part:
            images[status] = images.get(status, 0) + count
            spend += cost or 0
    statuses = [(label, images[status]) for status, label in Generation.Status.choices if images.get(status)]
    return {"images": sum(images.values()), "spend": spend, "statuses": statuses}


@staff_required
def generation_list(request):
    form = FilterForm(request.GET)
    form.is_valid()  # invalid fields are reported and left out; the valid ones still filter
    data = form.cleaned_data
    newest = data.get("sort") != "oldest"
    rows, previous, following = keyset.paged(request, _filtered(data), "created_at", newest=newest)
    context = {
        "form": form,
        "generations": thumbnails.laid_out(rows),
        "newest": newest,
        "previous": previous,
        "next": following,
        "totals": totals(data),
        "export": "?".join(filter(None, [reverse("dashboard:generations-export"), keyset.query(request)])),
        "unknown_user": data.get("user") == [],
        "models": sorted({model for models in settings.IMAGE_PRICES.values() for model in models}),
    }
    return render(request, "dashboard/generations/list.html", context)


# CSV of the list (spreadsheets.py: headers, BOM, formula guard).

CSV_COLUMNS = {
    "id": "pk",
    "created_at": "created_at",
    "telegram_id": "user__telegram_id",
    "username": "user__username",
    "kind": "kind",
    "status": "status",
    "error_code": "error_code",
    "prompt": "prompt",
    "model": "model",
    "resolution": "resolution",
    "aspect_ratio": "aspect_ratio",
    "cache_hit": "cache_hit",
    "cost_usd": "cost_usd",
    "latency_ms": "total_latency_ms",
}


def csv_chunks(generations, newest=True):
    """The CSV of `generations`, in chunks of CSV_BATCH rows: each chunk is one indexed query after the
    last row of the one before, so a million rows take no more memory than two thousand."""
    yield spreadsheets.encoded([list(CSV_COLUMNS)], first=True)
    rows = generations.values_list(*CSV_COLUMNS.values()).order_by(*keyset.order(newest, "created_at"))
    following = keyset.older if newest else keyset.newer
    batch = list(rows[:CSV_BATCH])
    while batch:
        yield spreadsheets.encoded(_csv_row(row) for row in batch)
        if len(batch) < CSV_BATCH:
            return
        pk, created_at = batch[-1][:2]
        batch = list(following(rows, (created_at, pk), "created_at")[:CSV_BATCH])


def _csv_row(row):
    pk, created_at, telegram_id, username, kind, status, error_code, prompt, model, *rest = row
    resolution, aspect_ratio, cache_hit, cost, latency = rest
    return [
        pk,
        timezone.localtime(created_at).isoformat(timespec="seconds"),
        telegram_id,
        spreadsheets.text(username),
        kind,
        status,
        error_code,
        spreadsheets.text(prompt),
        spreadsheets.text(model),
        resolution,
        aspect_ratio,
        "yes" if cache_hit else "no",
        spreadsheets.usd(cost, spreadsheets.PER_IMAGE),
        latency,
    ]


async def _one_at_a_time(chunks):
    """`chunks`, each made in a worker thread when it is to be sent: under ASGI, Django would read a
    plain iterator to its end, a million rows into memory, before sending the first byte."""
    make = sync_to_async(next)
    while (chunk := await make(chunks, None)) is not None:
        yield chunk


@staff_required
def generation_export(request):
    """The list as CSV, every row its filters match, in its order."""
    form = FilterForm(request.GET)
    form.is_valid()  # as on the list: invalid fields are left out
    chunks = csv_chunks(_filtered(form.cleaned_data), newest=form.cleaned_data.get("sort") != "oldest")
    response = StreamingHttpResponse(
        _one_at_a_time(chunks) if isinstance(request, ASGIRequest) else chunks,
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="nanobot-generations-{days.today()}.csv"'
    return response


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
    path("generations/export.csv", generation_export, name="generations-export"),
    path("generations/<int:pk>/", generation_detail, name="generation"),
    path("generations/<int:pk>/image/", generation_image, name="generation-image"),
]
