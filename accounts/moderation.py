"""Who may generate and what they may ask for: bans and banned keywords."""

import unicodedata

from django.core.cache import cache

from .models import Ban, BannedKeyword

KEYWORDS_CACHE_KEY = "moderation:keywords"
KEYWORDS_CACHE_SECONDS = 30


def normalize(text):
    """Fold text so look-alikes and padding can't dodge a keyword.

    NFKC maps full-width and stylised letters to plain ones, casefold ignores case, the
    combining marks of NFKD are dropped (so accents don't hide a word), and everything
    that is not a letter or digit goes, so `Ｂ a.n-n é d` reads as `banned`.
    """
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in text if ch.isalnum())


def active_keywords():
    """(folded phrase, phrase) of every active banned keyword.

    Cached for KEYWORDS_CACHE_SECONDS: a prompt check costs no query, and a keyword staff add
    or disable takes effect within that time in every process.
    """
    keywords = cache.get(KEYWORDS_CACHE_KEY)
    if keywords is None:
        phrases = BannedKeyword.objects.filter(is_active=True).values_list("phrase", flat=True)
        keywords = [(needle, phrase) for phrase in phrases if (needle := normalize(phrase))]
        cache.set(KEYWORDS_CACHE_KEY, keywords, KEYWORDS_CACHE_SECONDS)
    return keywords


def matching_keyword(prompt):
    """The first active banned keyword (its phrase) the prompt contains, or None."""
    folded = normalize(prompt)
    return next((phrase for needle, phrase in active_keywords() if needle in folded), None)


def active_ban(user):
    return Ban.objects.active().filter(user=user).order_by("-created_at").first()
