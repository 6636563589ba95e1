from django.shortcuts import render

from . import budget, reports
from .access import staff_required
from .costreports import line_chart


@staff_required
def overview(request):
    figures = reports.overview()
    shares = budget.daily_share if budget.any_set() else None
    chart = line_chart(figures["spend_days"], "spend", money=True, budget=shares)
    return render(request, "dashboard/overview.html", {**figures, "spend_chart": chart, "recent": reports.recent()})
