"""What someone locked out by too many failed sign-ins sees (django-axes' AXES_LOCKOUT_CALLABLE)."""

from axes.helpers import get_cool_off
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render


def locked_out(request, response, credentials):
    """The sign-in page again, saying why and for how long; the same page for the admin's login."""
    form = AuthenticationForm(request, initial={"username": (credentials or {}).get("username", "")})
    minutes = max(1, round(get_cool_off(request).total_seconds() / 60))
    context = {"form": form, "locked_out_minutes": minutes, "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)
