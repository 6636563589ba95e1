from django.shortcuts import render

from . import reports
from .access import staff_required


@staff_required
def overview(request):
    return render(request, "dashboard/overview.html", {**reports.overview(), "recent": reports.recent()})
