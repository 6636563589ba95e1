"""Broadcasts: write a message to every user or one tier, see who it goes to and how it reads, send it, and
watch it go out."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from accounts.models import Broadcast, Tier
from accounts.staff import StaffError
from botcore import broadcasts

from .access import staff_required

FAILURES_PER_PAGE = 50


class BroadcastForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("Message"), widget=forms.Textarea(attrs={"rows": 6}), max_length=4096)
    tier = forms.ModelChoiceField(
        Tier.objects.all(), required=False, empty_label=gettext_lazy("Everyone"), label=gettext_lazy("To")
    )

    def clean_text(self):
        try:
            return broadcasts.checked_text(self.cleaned_data["text"])
        except StaffError as exc:
            raise ValidationError(str(exc)) from None


@staff_required
def broadcast_list(request):
    """The form; its POST shows the preview, and only the preview's Send starts it."""
    form = BroadcastForm(request.POST or None)
    action = request.POST.get("action")
    if request.method == "POST" and form.is_valid() and action != "edit":
        if action != "send":
            return render(request, "dashboard/broadcasts/preview.html", preview(form))
        try:
            broadcast = broadcasts.start(actor=request.user, **form.cleaned_data)
        except StaffError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Sending started."))
            return redirect("dashboard:broadcast", pk=broadcast.pk)
    page = Paginator(Broadcast.objects.select_related("created_by"), 20).get_page(request.GET.get("page"))
    rows = [(broadcast, broadcasts.progress(broadcast)) for broadcast in page]
    return render(request, "dashboard/broadcasts/list.html", {"form": form, "page": page, "rows": rows})


def preview(form: BroadcastForm) -> dict:
    """What the preview page shows: the message as sent, who gets it, and what would hold it up."""
    tier = form.cleaned_data["tier"]
    audience = broadcasts.audience(tier)
    if tier:
        to = ngettext(
            "This goes to %(count)s user on tier %(tier)s.",
            "This goes to %(count)s users on tier %(tier)s.",
            audience.count,
        ) % {"count": grouped(audience.count), "tier": tier.name}
    else:
        to = ngettext("This goes to %(count)s user.", "This goes to %(count)s users.", audience.count)
        to %= {"count": grouped(audience.count)}
    skipped = ""
    if audience.skipped:
        skipped = ngettext(
            "%(count)s who blocked the bot is skipped.", "%(count)s who blocked the bot are skipped.", audience.skipped
        ) % {"count": grouped(audience.skipped)}
    no_token = not settings.TELEGRAM_BOT_TOKEN
    return {
        "form": form,
        "text": form.cleaned_data["text"],
        "to": to,
        "skipped": skipped,
        "no_token": no_token,
        "no_token_sentence": Broadcast.Failure.NO_TOKEN.label,
        "no_worker": not no_token and broadcasts.waits_for_a_worker(),
    }


def grouped(count: int) -> str:
    """1234 -> "1,234", as the templates' |floatformat:"g" writes it."""
    return number_format(count, force_grouping=True)


@staff_required
def broadcast_detail(request, pk):
    broadcast = get_object_or_404(Broadcast.objects.select_related("created_by"), pk=pk)
    failures = broadcast.failed_recipients.select_related("user").order_by("pk")
    context = {
        "broadcast": broadcast,
        "progress": broadcasts.progress(broadcast),
        "failures": Paginator(failures, FAILURES_PER_PAGE).get_page(request.GET.get("page")),
    }
    return render(request, "dashboard/broadcasts/detail.html", context)


@staff_required
def broadcast_progress(request, pk):
    """The figures the detail page updates itself with while the broadcast goes out (static/js/broadcast.js)."""
    broadcast = get_object_or_404(Broadcast, pk=pk)
    now = broadcasts.progress(broadcast)
    figures = {
        "status": now.label,
        "sent": f"{grouped(broadcast.sent)} / {grouped(broadcast.total)}",
        "blocked": grouped(broadcast.blocked),
        "failed": grouped(broadcast.failed),
        "situation": now.sentence,
    }
    return JsonResponse(
        {"state": now.state, "figures": figures, "gone_through": now.gone_through, "total": broadcast.total}
    )


@staff_required
@require_POST
def broadcast_resume(request, pk):
    try:
        broadcasts.resume(actor=request.user, broadcast_id=pk)
    except Broadcast.DoesNotExist:
        raise Http404 from None
    except StaffError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Sending the rest."))
    return redirect("dashboard:broadcast", pk=pk)


urlpatterns = [
    path("broadcasts/", broadcast_list, name="broadcasts"),
    path("broadcasts/<int:pk>/", broadcast_detail, name="broadcast"),
    path("broadcasts/<int:pk>/progress/", broadcast_progress, name="broadcast-progress"),
    path("broadcasts/<int:pk>/resume/", broadcast_resume, name="broadcast-resume"),
]
