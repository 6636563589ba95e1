"""Who may generate and what they may ask for: bans and banned keywords."""

import unicodedata

from .models import Ban, BannedKeyword


def normalize(text):
    """Fold text so look-alikes and padding can't dodge a keyword.

    NFKC maps full-width and stylised letters to plain ones, casefold ignores case, the
    combining marks of NFKD are dropped (so accents don't hide a word), and everything
    that is not a letter or digit goes, so `Ｂ a.n-n é d` reads as `banned`.
    """
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in text if ch.isalnum())


def matching_keyword(prompt):
    """The first active banned keyword the prompt contains, or None."""
    folded = normalize(prompt)
    for keyword in BannedKeyword.objects.filter(is_active=True).only("id", "phrase"):
        needle = normalize(keyword.phrase)
        if needle and needle in folded:
            return keyword
    return None


def active_ban(user):
    return Ban.objects.active().filter(user=user).order_by("-created_at").first()
