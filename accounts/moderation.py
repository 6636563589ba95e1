"""Who may generate and what they may ask for: bans, banned keywords, and how long a prompt is."""

import functools
import unicodedata

import disarm
from django.core.cache import cache

from .models import Ban, BannedKeyword, TelegramUser

KEYWORDS_CACHE_KEY = "moderation:keywords"
KEYWORDS_CACHE_SECONDS = 30


# Zero-width letters that Unicode nevertheless files under Lo (Default_Ignorable_Code_Point).
HANGUL_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Tag characters end some emoji flags (Scotland's): trimming them would change the flag.
TAGS = range(0xE0000, 0xE0080)


def normalize(text: str) -> str:
    """Fold text so look-alikes and padding can't dodge a keyword; what a keyword is matched as.

    NFKC maps full-width and stylised letters to plain ones, casefold ignores case, the
    combining marks of NFKD are dropped (so accents don't hide a word), and everything
    that is not a letter or digit goes, so `Ｂ a.n-n é d` reads as `banned`. Then a letter of
    another script drawn like Latin letters or digits reads as them (`nеws`, with a
    Cyrillic е, is `news`).
    """
    return _skeleton(_fold(text))


def readings(text: str) -> list[str]:
    """The ways a prompt is read when matching keywords: its `normalize`d form and, when it
    mixes Latin letters with another script's, the same spelt out in Latin.

    The second reading catches a letter swapped for its counterpart rather than its look-alike:
    the Cyrillic у of `nуde` is drawn like a y, but stands for a u. A prompt wholly in one
    script isn't spelt out, so Russian `горе` (grief) never reads as `gore`.
    """
    folded = _fold(text)
    skeleton = _skeleton(folded)
    if folded.isascii() or not any("a" <= ch <= "z" for ch in folded):
        return [skeleton]
    spelt = "".join(map(_spelt, folded))
    return [skeleton] if spelt == skeleton else [skeleton, spelt]


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in text if ch.isalnum())


def _skeleton(folded: str) -> str:
    return folded if folded.isascii() else "".join(map(_look_alike, folded))


@functools.cache
def _look_alike(ch: str) -> str:
    """The ASCII letters or digits `ch` is drawn like (its UTS #39 confusable prototype), or `ch`.

    Only the half of a TR39 skeleton that maps into ASCII: ASCII itself stays as it is, since a
    full skeleton reads `m` as `rn`, `d` as `cl` and `1` as `l`, so a keyword `porn` would refuse
    "pomegranate" and `lol` "101 dalmatians".
    """
    return _as_ascii(ch, disarm.normalize_confusables(ch, target_script="latin", digit_policy="numeric"))


@functools.cache
def _spelt(ch: str) -> str:
    """The Latin letters `ch` stands for (`у` is `u`), or `ch`."""
    return _as_ascii(ch, disarm.transliterate(ch, errors="ignore"))


def _as_ascii(ch: str, reading: str) -> str:
    # Wide (CJK) characters stay as written: the confusables table reads katakana ノ as a slash,
    # and transliteration spells 猫 as mao.
    if ch.isascii() or unicodedata.east_asian_width(ch) in "WF":
        return ch
    reading = _fold(reading)
    return reading if reading and reading.isascii() else ch


def visible_length(text: str) -> int:
    """How many characters of `text` show: zero-width, format and control characters don't
    count, and a combining mark counts with the letter it sits on."""
    return sum(1 for ch in text if not _invisible(ch) and unicodedata.category(ch) not in ("Mn", "Me"))


def trim(text: str) -> str:
    """`text` without whitespace or invisible characters at either end."""
    start, end = 0, len(text)
    while start < end and _padding(text[start]):
        start += 1
    while end > start and _padding(text[end - 1]):
        end -= 1
    return text[start:end]


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in INVISIBLE or ch in HANGUL_FILLERS


def _padding(ch: str) -> bool:
    return ch.isspace() or (_invisible(ch) and ord(ch) not in TAGS)


def active_keywords() -> list[tuple[str, str]]:
    """(phrase as matched, phrase) of every active banned keyword.

    Cached for KEYWORDS_CACHE_SECONDS: a prompt check costs no query, and a keyword staff add
    or disable takes effect within that time in every process.
    """
    keywords: list[tuple[str, str]] | None = cache.get(KEYWORDS_CACHE_KEY)
    if keywords is None:
        phrases = BannedKeyword.objects.filter(is_active=True).values_list("phrase", flat=True)
        keywords = [(needle, phrase) for phrase in phrases if (needle := normalize(phrase))]
        cache.set(KEYWORDS_CACHE_KEY, keywords, KEYWORDS_CACHE_SECONDS)
    return keywords


def matching_keyword(prompt: str) -> str | None:
    """The first active banned keyword (its phrase) the prompt contains, or None."""
    return keyword_match(prompt)[0]


def keyword_match(prompt: str) -> tuple[str | None, str]:
    """(phrase, reading): the first active banned keyword the prompt contains, and the reading
    of the prompt it was found in; (None, the prompt's first reading) when it contains none."""
    texts = readings(prompt)
    for needle, phrase in active_keywords():
        for text in texts:
            if needle in text:
                return phrase, text
    return None, texts[0]


def active_ban(user: TelegramUser) -> Ban | None:
    if not user.ever_banned:  # most users: no query
        return None
    return Ban.objects.active().filter(user=user).order_by("-created_at").first()
