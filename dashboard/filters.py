"""A filter the dashboard's lists share: the user meant by a Telegram id or an @username."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import TelegramUser


class UserField(forms.CharField):
    """The ids of the users meant (usually one, none when no one matches), or None when left empty.

    Looked up first, so that a list's rows are then found through their (user, moment) index."""

    def __init__(self, **kwargs):
        defaults = {"label": _("User"), "required": False, "max_length": 65, "help_text": _("Telegram id or @username")}
        super().__init__(**{**defaults, **kwargs})

    def clean(self, value):
        value = super().clean(value)  # stripped
        if not value:
            return None
        if value.isascii() and value.isdigit() and int(value) < 2**63:
            users = TelegramUser.objects.filter(telegram_id=int(value))
        else:
            name = value.removeprefix("@")  # usernames start with a letter, so a number is never one
            if not (name[:1].isalpha() and all(c.isascii() and (c.isalnum() or c == "_") for c in name)):
                raise forms.ValidationError(_("Enter a Telegram id or an @username."))
            users = TelegramUser.objects.filter(username__iexact=name)
        return list(users.values_list("pk", flat=True)[:10])
