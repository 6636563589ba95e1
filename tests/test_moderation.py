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
