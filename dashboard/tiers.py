"""Tiers: create, edit and delete them (asking where a deleted tier's users go)."""

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import staff
from accounts.models import Tier

from .access import staff_required


class TierForm(forms.ModelForm):
    unlimited = forms.BooleanField(required=False, label=gettext_lazy("Unlimited images per day"))
    max_concurrent_jobs = forms.IntegerField(min_value=1, initial=1, label=gettext_lazy("Max concurrent jobs"))
    # Not a model field of the form: the model's one-default constraint would refuse a second
    # default, while staff.save_tier moves the default over from the old tier.
    is_default = forms.BooleanField(
        required=False,
        label=gettext_lazy("Default"),
        help_text=gettext_lazy("New users start on this tier; it takes over from the current default."),
    )

    class Meta:
        model = Tier
        fields = ["name", "daily_limit", "unlimited", "max_resolution", "cooldown_seconds", "max_concurrent_jobs"]
        labels = {
            "name": gettext_lazy("Name"),
            "daily_limit": gettext_lazy("Images per day"),
            "max_resolution": gettext_lazy("Max resolution"),
            "cooldown_seconds": gettext_lazy("Cooldown (seconds)"),
        }
        error_messages = {"name": {"unique": gettext_lazy("A tier with this name already exists.")}}
        help_texts = {
            "daily_limit": gettext_lazy("Empty means unlimited."),
            "cooldown_seconds": gettext_lazy("Minimum wait between two requests."),
        }

    seen = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["unlimited"].initial = self.instance.daily_limit is None
            self.fields["is_default"].initial = self.instance.is_default
            self.fields["seen"].initial = staff.version(self.instance, staff.TIER_FIELDS)

    def clean(self):
        data = super().clean()
        if data.get("unlimited"):
            data["daily_limit"] = None
        return data

    def tier_fields(self):
        """The cleaned values, as staff.save_tier takes them."""
        return {name: self.cleaned_data[name] for name in [*staff.TIER_FIELDS, "seen"]}


class DeleteTierForm(forms.Form):
    """Asks where the tier's users (and, for the default tier, new users) go instead."""

    move_to = forms.ModelChoiceField(Tier.objects.none(), label=gettext_lazy("Move its users to"))

    def __init__(self, tier, users, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if users:
            self.fields["move_to"].queryset = Tier.objects.exclude(pk=tier.pk)
        elif tier.is_default:
            self.fields["move_to"].queryset = Tier.objects.exclude(pk=tier.pk)
            self.fields["move_to"].label = _("New users will start on")
        else:
            del self.fields["move_to"]


def _posted(request):
    """The submitted data, or None for a page view (an empty POST is still a submission)."""
    return request.POST if request.method == "POST" else None


@staff_required
def tier_list(request):
    tiers = Tier.objects.annotate(user_count=Count("users")).order_by("name")
    return render(request, "dashboard/tiers/list.html", {"tiers": tiers})


def _edit(request, tier):
    form = TierForm(_posted(request), instance=tier)
    if request.method == "POST" and form.is_valid():
        try:
            saved = staff.save_tier(actor=request.user, tier=tier if tier.pk else None, **form.tier_fields())
        except staff.StaffError as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, _("Tier “%(name)s” saved.") % {"name": saved.name})
            return redirect("dashboard:tiers")
    return render(request, "dashboard/tiers/form.html", {"form": form, "tier": tier})


@staff_required
def tier_new(request):
    return _edit(request, Tier())


@staff_required
def tier_edit(request, pk):
    return _edit(request, get_object_or_404(Tier, pk=pk))


@staff_required
def tier_delete(request, pk):
    tier = get_object_or_404(Tier, pk=pk)
    users = tier.users.count()
    form = DeleteTierForm(tier, users, _posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            staff.delete_tier(actor=request.user, tier=tier, move_to=form.cleaned_data.get("move_to"))
        except staff.StaffError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Tier “%(name)s” deleted.") % {"name": tier.name})
            return redirect("dashboard:tiers")
    return render(request, "dashboard/tiers/delete.html", {"form": form, "tier": tier, "users": users})


urlpatterns = [
    path("tiers/", tier_list, name="tiers"),
    path("tiers/new/", tier_new, name="tier-new"),
    path("tiers/<int:pk>/", tier_edit, name="tier"),
    path("tiers/<int:pk>/delete/", tier_delete, name="tier-delete"),
]
