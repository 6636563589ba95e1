"""Ranges of days in the dashboard's forms: the generation log's filter, and the days a cost report
covers (the page, its CSV exports and the JSON API read them the same way)."""

from datetime import date, timedelta

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from accounts import days

# The days a range may name. No generation predates 2000, and a range may run past today (this
# month, this year); the bounds only keep a day's start, in any time zone, a long way from the
# calendar's ends, where it is not a datetime and the page would fail instead of saying why.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
BACKWARDS = _("The first day of the range must not be after the last.")


def _date_field(label):
    return forms.DateField(
        label=label,
        required=False,
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
        widget=forms.DateInput({"type": "date", "min": FIRST_DAY, "max": LAST_DAY}, format="%Y-%m-%d"),
    )


# "from" is a Python keyword, so these two fields can't be written as class attributes.
_Days = type("_Days", (forms.Form,), {"from": _date_field(_("From")), "to": _date_field(_("To"))})


class DateRangeForm(_Days):
    """Days `from` and `to`, both included, in TIME_ZONE; either may be left out."""

    def clean(self):
        data = super().clean()
        if data.get("from") and data.get("to") and data["from"] > data["to"]:
            data.pop("from"), data.pop("to")
            raise forms.ValidationError(BACKWARDS)
        return data


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
