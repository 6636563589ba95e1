"""The audit log: every change staff made, newest first."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import path

from accounts.models import AuditEntry

from .access import staff_required


@staff_required
def audit_log(request):
    entries = AuditEntry.objects.all()
    if action := request.GET.get("action"):
        entries = entries.filter(action=action)
    if actor := request.GET.get("actor"):
        entries = entries.filter(actor_name=actor)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    actions = AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()
    context = {"page": page, "actions": actions, "chosen": action or "", "actor": actor or ""}
    return render(request, "dashboard/audit.html", context)


urlpatterns = [path("audit/", audit_log, name="audit")]
