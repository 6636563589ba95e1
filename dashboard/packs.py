"""Credit packs: what /buy sells for Telegram Stars; create, edit and delete them (accounts.payments)."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import payments, staff
from accounts.models import CreditPack

from .access import staff_required

# PACK_FIELDS as the form has them: the tier itself rather than its id, so save_pack sees it is set.
FORM_FIELDS = ["name", "stars", "images", "tier", "tier_days", "is_active"]


class PackForm(forms.ModelForm):
    stars = forms.IntegerField(
        min_value=1, label=gettext_lazy("Price (Stars)"), help_text=gettext_lazy("Price in Telegram Stars.")
    )
    images = forms.IntegerField(
        min_value=1,
        label=gettext_lazy("Images"),
        help_text=gettext_lazy("Credits: one image each, after the daily free images."),
    )
    tier_days = forms.IntegerField(
        min_value=1,
        required=False,
        label=gettext_lazy("For days"),
        help_text=gettext_lazy("How many days the tier upgrade lasts."),
    )

    class Meta:
        model = CreditPack
        fields = FORM_FIELDS
        labels = {
            "name": gettext_lazy("Name"),
            "tier": gettext_lazy("Upgrade to tier"),
            "is_active": gettext_lazy("On sale"),
        }
        help_texts = {
            "name": gettext_lazy("Shown on the button and the invoice (Telegram allows 32 characters)."),
            "tier": gettext_lazy("Optional: the pack also moves its buyer to this tier for some days."),
            "is_active": gettext_lazy("Offered in /buy. Untick to stop selling it and keep its history."),
        }

    seen = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].empty_label = _("No upgrade")
        if self.instance.pk:
            self.fields["seen"].initial = staff.version(self.instance, payments.PACK_FIELDS)

    def pack_fields(self):
        """The cleaned values, as payments.save_pack takes them."""
        return {name: self.cleaned_data[name] for name in [*FORM_FIELDS, "seen"]}


def _posted(request):
    """The submitted data, or None for a page view (an empty POST is still a submission)."""
    return request.POST if request.method == "POST" else None


@staff_required
def pack_list(request):
    return render(request, "dashboard/packs/list.html", {"packs": payments.with_sales()})


def _edit(request, pack):
    form = PackForm(_posted(request), instance=pack)
    if request.method == "POST" and form.is_valid():
        try:
            saved = payments.save_pack(actor=request.user, pack=pack if pack.pk else None, **form.pack_fields())
        except staff.StaffError as refusal:
            form.add_error(refusal.field if refusal.field in form.fields else None, str(refusal))
        else:
            messages.success(request, _("Pack “%(name)s” saved.") % {"name": saved.name})
            return redirect("dashboard:packs")
    return render(request, "dashboard/packs/form.html", {"form": form, "pack": pack})


@staff_required
def pack_new(request):
    return _edit(request, CreditPack())


@staff_required
def pack_edit(request, pk):
    return _edit(request, get_object_or_404(CreditPack, pk=pk))


@staff_required
def pack_delete(request, pk):
    pack = get_object_or_404(CreditPack, pk=pk)
    if request.method == "POST":
        try:
            payments.delete_pack(actor=request.user, pack=pack)
        except staff.StaffError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Pack “%(name)s” deleted.") % {"name": pack.name})
            return redirect("dashboard:packs")
    return render(request, "dashboard/packs/delete.html", {"pack": pack, "bought": pack.payments.count()})


urlpatterns = [
    path("packs/", pack_list, name="packs"),
    path("packs/new/", pack_new, name="pack-new"),
    path("packs/<int:pk>/", pack_edit, name="pack"),
    path("packs/<int:pk>/delete/", pack_delete, name="pack-delete"),
]
