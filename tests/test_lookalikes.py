"""End to end: prompts disguised with look-alike or invisible characters are refused before any paid call."""

from asgiref.sync import sync_to_async

from accounts.models import QuotaUsage
from botcore.models import Generation
from tests.conftest import settled
from tests.factories import KeywordFactory

ALICE = 501


def charged(telegram_id):
    return QuotaUsage.objects.filter(user__telegram_id=telegram_id).exclude(used=0, reserved=0).exists()


async def test_a_banned_word_spelt_with_a_cyrillic_letter_is_refused_and_costs_nothing(bot, tg, gemini):
    await sync_to_async(KeywordFactory)(phrase="nude")
    tg.push_text(ALICE, "a nуde woman")  # the у is Cyrillic

    [reply] = await tg.wait_for_call("sendMessage")

    assert "This description contains something we don't allow" in reply.params["text"]
    assert gemini.requests == []
    logged = await Generation.objects.aget()
    assert (logged.status, logged.error_code, logged.error_message) == ("refused", "banned_keyword", "nude")
    assert not await sync_to_async(charged)(ALICE)


async def test_a_prompt_of_zero_width_spaces_is_too_short_and_costs_nothing(bot, tg, gemini):
    tg.push_text(ALICE, "\u200b" * 5)

    [reply] = await tg.wait_for_call("sendMessage")

    assert "Please describe the image in at least 3 characters." in reply.params["text"]
    assert gemini.requests == []
    assert not await Generation.objects.aexists()
    assert not await sync_to_async(charged)(ALICE)


async def test_invisible_padding_is_not_kept_with_the_prompt(bot, tg, gemini):
    tg.push_text(ALICE, "\u200b\ufeffa red fox\u2060\u200b")

    [generation] = await settled(1)

    assert generation.prompt == "a red fox"
    assert [asked.prompt for asked in gemini.requests] == ["a red fox"]
