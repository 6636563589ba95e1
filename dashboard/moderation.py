"""Banned keywords (with a box to test a prompt against them) and bans."""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import moderation, staff
from accounts.models import Ban, BannedKeyword

from .access import staff_required

BANS_PER_PAGE = 50
BAN_FILTERS = {
    "active": gettext_lazy("Active"),
    "lifted": gettext_lazy("Lifted"),
    "expired": gettext_lazy("Expired"),
    "all": gettext_lazy("All"),
}


class KeywordForm(forms.ModelForm):
    class Meta:
        model = BannedKeyword
        fields = ["phrase", "note", "is_active"]
        labels = {
            "phrase": gettext_lazy("Phrase"),
            "note": gettext_lazy("Note"),
            "is_active": gettext_lazy("Active"),
        }
        help_texts = {
            "phrase": gettext_lazy(
                "Matched anywhere in a prompt, ignoring case, accents, spaces, punctuation "
                "and look-alike letters from other scripts."
            ),
            "note": gettext_lazy("Why it is banned, for staff."),
        }

    def clean_phrase(self):
        try:
            return staff.check_phrase(self.cleaned_data["phrase"], self.instance if self.instance.pk else None)
        except staff.StaffError as refusal:
            raise forms.ValidationError(str(refusal)) from refusal

    def keyword_fields(self):
        """The cleaned values, as staff.save_keyword takes them."""
        return {name: self.cleaned_data[name] for name in [*self._meta.fields, *self.declared_fields]}


class KeywordEditForm(KeywordForm):
    seen = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["seen"].initial = staff.version(self.instance, staff.KEYWORD_FIELDS)


class NewKeywordForm(KeywordForm):
    class Meta(KeywordForm.Meta):
        fields = ["phrase", "note"]


def _posted(request):
    """The submitted data, or None for a page view."""
    return request.POST if request.method == "POST" else None


def prompt_test(prompt):
    """What the bot would make of `prompt`: the keyword it matches and the text it was matched in."""
    if not prompt:
        return None
    match, reading = moderation.keyword_match(prompt)
    return {"prompt": prompt, "reading": reading, "match": match}


@staff_required
def keyword_list(request):
    form = NewKeywordForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        keyword = staff.save_keyword(actor=request.user, **form.keyword_fields())
        messages.success(request, _("Keyword “%(phrase)s” added.") % {"phrase": keyword.phrase})
        return redirect("dashboard:keywords")
    keywords = list(BannedKeyword.objects.order_by("phrase"))
    for keyword in keywords:
        keyword.needle = moderation.normalize(keyword.phrase)
    context = {"form": form, "keywords": keywords, "test": prompt_test(request.GET.get("prompt", "").strip())}
    return render(request, "dashboard/moderation/keywords.html", context)


@staff_required
def keyword_edit(request, pk):
    keyword = get_object_or_404(BannedKeyword, pk=pk)
    form = KeywordEditForm(_posted(request), instance=keyword)
    if request.method == "POST" and form.is_valid():
        try:
            saved = staff.save_keyword(actor=request.user, keyword=keyword, **form.keyword_fields())
        except staff.StaffError as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, _("Keyword “%(phrase)s” saved.") % {"phrase": saved.phrase})
            return redirect("dashboard:keywords")
    return render(request, "dashboard/moderation/keyword.html", {"form": form, "keyword": keyword})


@staff_required
def keyword_delete(request, pk):
    """Asks first (GET), deletes on the answer (POST)."""
    keyword = get_object_or_404(BannedKeyword, pk=pk)
    if request.method != "POST":
        return render(request, "dashboard/moderation/keyword_delete.html", {"keyword": keyword})
    try:
        staff.delete_keyword(actor=request.user, keyword=keyword)
    except staff.StaffError as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, _("Keyword “%(phrase)s” deleted.") % {"phrase": keyword.phrase})
    return redirect("dashboard:keywords")


def filtered_bans(status, now):
    bans = Ban.objects.select_related("user", "created_by", "lifted_by").order_by("-created_at", "-pk")
    if status == "active":
        return bans.active(now)
    if status == "lifted":
        return bans.filter(lifted_at__isnull=False)
    if status == "expired":
        return bans.filter(lifted_at__isnull=True, expires_at__lte=now)
    return bans


@staff_required
def ban_list(request):
    status = request.GET.get("status")
    status = status if status in BAN_FILTERS else "active"
    now = timezone.now()
    page = Paginator(filtered_bans(status, now), BANS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "status": status, "filters": BAN_FILTERS.items(), "now": now}
    return render(request, "dashboard/moderation/bans.html", context)


@staff_required
@require_POST
def ban_lift(request, pk):
    ban = get_object_or_404(Ban.objects.select_related("user"), pk=pk)
    if staff.lift_ban(actor=request.user, ban=ban):
        messages.success(request, _("The ban on %(user)s is lifted.") % {"user": ban.user})
    else:
        messages.info(request, _("That ban was already lifted."))
    status = request.POST.get("status")
    back = reverse("dashboard:bans")
    return redirect(f"{back}?{urlencode({'status': status})}" if status in BAN_FILTERS else back)


urlpatterns = [
    path("keywords/", keyword_list, name="keywords"),
    path("keywords/<int:pk>/", keyword_edit, name="keyword"),
    path("keywords/<int:pk>/delete/", keyword_delete, name="keyword-delete"),
    path("bans/", ban_list, name="bans"),
    path("bans/<int:pk>/lift/", ban_lift, name="ban-lift"),
]
