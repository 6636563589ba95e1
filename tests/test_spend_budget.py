"""The spend budget holds: once the image calls' cost, with those in flight, would pass a daily or monthly
limit, new paid images are refused politely and for free, images from the cache still answer, and the
admins are told once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import QuotaUsage, TelegramUser, Tier
from botcore.models import Generation
from tests.conftest import settled

ALICE, BOB, ADMIN = 501, 502, 9000
REFUSED = "This bot has spent its image budget for now"


def texts_in(tg, chat_id):
    return [m.get("text") or m.get("caption") or "" for m in tg.chat(chat_id)]


def alerts(tg):
    return [c for c in tg.calls_of("sendMessage") if c.params["chat_id"] == ADMIN]


@sync_to_async
def used_today(telegram_id):
    usage = QuotaUsage.objects.filter(user__telegram_id=telegram_id).first()
    return (usage.used, usage.reserved) if usage else (0, 0)


@pytest.mark.bot_settings(DAILY_BUDGET_USD=Decimal("0.20"), ADMIN_TELEGRAM_IDS=[ADMIN])
async def test_a_reached_daily_budget_refuses_the_next_paid_image_but_not_a_cached_one(bot, tg, gemini):
    tg.push_text(ALICE, "a lighthouse at dawn")
    [first] = await settled(1)
    assert first.status == "delivered"  # $0.1345 of $0.20: the next image ($0.134) would pass the limit

    tg.push_text(ALICE, "a harbour at night")
    _, refused = await settled(2)
    assert (refused.status, refused.error_code, refused.cost_usd) == ("refused", "budget", 0)
    await tg.wait_for(lambda t: REFUSED in texts_in(t, ALICE)[-1], what="the budget refusal")
    assert "Nothing was charged" in texts_in(tg, ALICE)[-1]
    assert len(gemini.requests) == 1 and await used_today(ALICE) == (1, 0)
    [alert] = await tg.wait_for(alerts)
    assert "the day budget of $0.20 is reached ($0.13 spent" in alert.params["text"]
    assert "DAILY_BUDGET_USD" in alert.params["text"]

    tg.push_text(BOB, "A lighthouse at DAWN")  # the same request: the cache answers, for nothing
    *_, cached = await settled(3)
    assert (cached.status, cached.cache_hit) == ("delivered", True)

    tg.push_text(BOB, "a third picture")
    await settled(4)
    assert len(gemini.requests) == 1 and len(alerts(tg)) == 1  # told once a day, not once a refusal


@pytest.mark.bot_settings(MONTHLY_BUDGET_USD=Decimal("0.30"))
async def test_images_in_flight_count_against_the_budget_so_a_burst_cannot_overshoot_it(bot, tg, gemini):
    """Two images being made elsewhere (another worker) at $0.134 each leave less than one image's price."""
    other = await TelegramUser.objects.acreate(telegram_id=BOB, tier=await Tier.objects.aget(name="free"))
    for _ in range(2):
        await Generation.objects.acreate(
            user=other,
            tier="free",
            chat_id=BOB,
            prompt="p",
            status="running",
            resolution="2K",
            started_at=timezone.now(),
            lease_until=timezone.now() + timedelta(minutes=5),
        )
    tg.push_text(ALICE, "a red fox")
    await tg.wait_for(lambda t: texts_in(t, ALICE) and REFUSED in texts_in(t, ALICE)[-1], what="the refusal")
    assert gemini.requests == []
    refused = await Generation.objects.aget(user__telegram_id=ALICE)
    assert (refused.status, refused.error_code) == ("refused", "budget")


@pytest.mark.bot_settings(MONTHLY_BUDGET_USD=Decimal("100"))
async def test_under_the_budget_images_are_made_as_usual(bot, tg, gemini):
    tg.push_text(ALICE, "a red fox")
    [generation] = await settled(1)
    assert generation.status == "delivered" and len(gemini.requests) == 1
