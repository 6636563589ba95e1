"""The days a cost report covers, from its range parameters: the page, its CSV exports and the JSON
API read them the same way."""

from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts import days

from .generations import BACKWARDS, DateRangeForm

PRESETS = {"30": 30, "90": 90}
DEFAULT_DAYS = 30
MAX_DAYS = 366


class PeriodForm(DateRangeForm):
    range = forms.ChoiceField(
        choices=[("30", _("Last 30 days")), ("90", _("Last 90 days")), ("custom", _("Custom"))], required=False
    )
    field_order = ["range", "from", "to"]


def period(params):
    """(first, last, form): the days a report covers. A preset ends today; a custom range that
    can't be used falls back to the last 30 days, with the reason among the form's errors."""
    today = days.today()
    form = PeriodForm(params)
    fallback = (today - timedelta(DEFAULT_DAYS - 1), today)
    if not form.is_valid():
        return *fallback, form
    data = form.cleaned_data
    choice = data["range"] or ("custom" if data.get("from") or data.get("to") else str(DEFAULT_DAYS))
    if choice in PRESETS:
        return today - timedelta(PRESETS[choice] - 1), today, form
    last = data.get("to") or today
    first = data.get("from") or last - timedelta(DEFAULT_DAYS - 1)
    if first > last:  # `from` alone, after today: the form compares the days only when both are given
        form.add_error(None, BACKWARDS)
        return *fallback, form
    if (last - first).days >= MAX_DAYS:
        form.add_error(None, _("A range can be at most %(days)d days long.") % {"days": MAX_DAYS})
        return *fallback, form
    return first, last, form
