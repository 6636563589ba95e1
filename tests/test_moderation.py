from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import moderation
from tests.factories import BanFactory, KeywordFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "prompt",
    [
        "a BANNED thing",
        "Ｂ a n n e d",  # full-width letter and inserted spaces
        "b.a-n_n/e*d",
        "bännéd",  # accents added to dodge the filter
        "b\u200banned",  # zero-width space
    ],
)
def test_keyword_is_caught_however_it_is_disguised(prompt):
    KeywordFactory(phrase="banned")
    assert moderation.matching_keyword(prompt) == "banned"


def test_multi_word_keyword_matches_across_spacing():
    KeywordFactory(phrase="nude celebrity")
    assert moderation.matching_keyword("a NUDE   celebrity on a beach")


def test_clean_prompt_and_disabled_keywords_pass():
    KeywordFactory(phrase="banned")
    KeywordFactory(phrase="gore", is_active=False)
    assert moderation.matching_keyword("a cat in a hat") is None
    assert moderation.matching_keyword("gore") is None


def test_ban_is_active_until_it_expires_or_is_lifted():
    user = UserFactory()
    assert moderation.active_ban(user) is None
    ban = BanFactory(user=user, expires_at=timezone.now() + timedelta(hours=1))
    assert moderation.active_ban(user) == ban
    ban.expires_at = timezone.now() - timedelta(seconds=1)
    ban.save()
    assert moderation.active_ban(user) is None
    lifted = BanFactory(user=user, lifted_at=timezone.now())
    assert moderation.active_ban(lifted.user) is None


@pytest.mark.parametrize(
    "prompt",
    [
        "a nudе woman",  # Cyrillic е
        "a n\u0443de woman",  # Cyrillic у: drawn like a y, but it stands for a u
        "NUDΕ",  # Greek capital epsilon
        "a n\u200bսde woman",  # Armenian u after a zero-width space
    ],
)
def test_look_alike_letters_from_other_scripts_are_read_as_latin(prompt):
    KeywordFactory(phrase="nude")
    assert moderation.matching_keyword(prompt) == "nude"


def test_a_prompt_wholly_in_another_script_is_not_spelt_out():
    KeywordFactory(phrase="gore")
    assert moderation.matching_keyword("горе") is None  # Russian for grief
    assert moderation.matching_keyword("gоrе") == "gore"  # Cyrillic о and е among Latin letters


def test_a_keyword_written_with_look_alikes_catches_the_plain_word():
    KeywordFactory(phrase="ѕех")  # Cyrillic dze, ie, ha
    assert moderation.matching_keyword("sex") == "ѕех"


@pytest.mark.parametrize(
    "keyword, prompt",
    [
        ("porn", "a pomegranate"),  # a skeleton reads m as rn
        ("nude", "a cell nucleus"),  # and d as cl
        ("lol", "101 dalmatians"),  # and 1 as l: ASCII letters and digits stay as they are
    ],
)
def test_plain_ascii_prompts_match_no_more_than_before(keyword, prompt):
    KeywordFactory(phrase=keyword)
    assert moderation.matching_keyword(prompt) is None


def test_cjk_text_is_matched_as_written():
    KeywordFactory(phrase="ノート")
    assert moderation.normalize("猫の絵 〇 丨 ノート") == "猫の絵〇丨ノート"
    assert moderation.matching_keyword("白いノート") == "ノート"
    assert moderation.matching_keyword("白いート") is None


@pytest.mark.parametrize(
    "prompt, length",
    [
        ("\u200b" * 5, 0),
        ("\u200b\u200ca\u200d", 1),
        ("\ufeff\u2060\u00ad\u3164", 0),  # BOM, word joiner, soft hyphen, Hangul filler
        ("猫の絵", 3),
        ("🐱🎩🌙", 3),
        ("e\u0301te", 3),  # a combining accent counts with its letter
        ("a cat", 5),
    ],
)
def test_prompts_are_measured_in_visible_characters(prompt, length):
    assert moderation.visible_length(prompt) == length


def test_trim_drops_invisible_characters_at_the_ends_only():
    assert moderation.trim("\u200b\ufeff a c\u200bat \u2060\n") == "a c\u200bat"
    assert moderation.trim("🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f") == (
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    )  # the tag characters that make the Scottish flag stay
