"""Broadcasts: write a message to every user or one tier, and watch it go out."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _

from accounts.models import Broadcast, Tier
from accounts.staff import StaffError
from botcore import broadcasts

from .access import staff_required


class BroadcastForm(forms.Form):
    text = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 6}), max_length=4096)
    tier = forms.ModelChoiceField(Tier.objects.all(), required=False, empty_label=_("Everyone"), label=_("To"))


@staff_required
def broadcast_list(request):
    form = BroadcastForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            broadcast = broadcasts.start(actor=request.user, **form.cleaned_data)
        except StaffError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Sending started."))
            return redirect("dashboard:broadcast", pk=broadcast.pk)
    page = Paginator(Broadcast.objects.select_related("created_by"), 20).get_page(request.GET.get("page"))
    return render(request, "dashboard/broadcasts/list.html", {"form": form, "page": page})


@staff_required
def broadcast_detail(request, pk):
    broadcast = get_object_or_404(Broadcast.objects.select_related("created_by"), pk=pk)
    return render(request, "dashboard/broadcasts/detail.html", {"broadcast": broadcast})


urlpatterns = [
    path("broadcasts/", broadcast_list, name="broadcasts"),
    path("broadcasts/<int:pk>/", broadcast_detail, name="broadcast"),
]
