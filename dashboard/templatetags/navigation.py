"""The dashboard's navigation: one list of (URL name, label) pairs, drawn by base.html."""

from django import template
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

register = template.Library()

LINKS = [
    ("dashboard:overview", _("Overview")),
    ("dashboard:users", _("Users")),
    ("dashboard:generations", _("Generations")),
    ("dashboard:costs", _("Costs")),
    ("dashboard:payments", _("Payments")),
    ("dashboard:analytics", _("Analytics")),
    ("dashboard:tiers", _("Tiers")),
    ("dashboard:packs", _("Packs")),
    ("dashboard:keywords", _("Keywords")),
    ("dashboard:bans", _("Bans")),
    ("dashboard:broadcasts", _("Broadcast")),
    ("dashboard:audit", _("Audit log")),
    ("api:openapi-view", _("API")),
    ("admin:index", _("Data (admin)")),
]


@register.simple_tag(takes_context=True)
def navigation(context):
    """Each link's href, label and whether it is the current page's section.

    A page belongs to the link with the longest path it starts with, so a user's page marks Users and only
    the overview itself marks Overview.
    """
    path = context["request"].path
    links = [(reverse(name), label) for name, label in LINKS]
    current = max((href for href, _label in links if path.startswith(href)), key=len, default=None)
    return [{"href": href, "label": label, "current": href == current} for href, label in links]
