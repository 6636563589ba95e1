"""One enum holds every code a request can end with; each has words for the user, and the stored values stay."""

from botcore.errors import ErrorCode
from botcore.telegram import texts


def test_every_code_has_words_for_the_user():
    worded = set(texts.REFUSALS) | set(texts.FAILURES) | {ErrorCode.INTERNAL}  # internal: texts.INTERNAL

    assert worded == set(ErrorCode)


def test_a_code_is_its_stored_string():
    assert ErrorCode.DELIVERY == "delivery" and f"{ErrorCode.BANNED_KEYWORD}" == "banned_keyword"
    assert texts.failure_reason("en", "no_image") == str(texts.FAILURES[ErrorCode.NO_IMAGE])
