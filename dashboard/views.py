from django.shortcuts import render

from . import budget, reports
from .access import staff_required
from .costreports import line_chart


@staff_required
def overview(request):
    figures = reports.overview()
    chart = line_chart(figures["spend_days"], "spend", money=True, budget=budget.daily_share)
    return render(request, "dashboard/overview.html", {**figures, "spend_chart": chart, "recent": reports.recent()})
