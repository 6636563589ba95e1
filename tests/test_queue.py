"""Beyond UPSTREAM_CONCURRENCY image calls at once, jobs wait their turn and their users see where they stand."""

import re

import pytest
from asgiref.sync import sync_to_async

from accounts.models import QuotaUsage
from tests.conftest import settled

pytestmark = pytest.mark.asyncio

QUEUE_TEXT = re.compile(r"in the queue: (\d+) ahead of you|next in the queue")


def places_shown(tg, chat_id):
    """The places in the queue that the chat's status message showed, in order (0: next)."""
    places = []
    for call in tg.calls_of("editMessageText"):
        if call.params["chat_id"] == chat_id and (match := QUEUE_TEXT.search(call.params["text"])):
            places.append(int(match[1]) if match[1] else 0)
    return places


@pytest.mark.bot_settings(UPSTREAM_CONCURRENCY=1, QUEUE_UPDATE_SECONDS=0.05)
async def test_a_queued_user_sees_their_place_go_down_to_next_then_gets_their_image(bot, tg, gemini):
    # Each place must stay long enough for its edit to get out: status edits wait behind results, and one
    # still waiting when the place changes again is replaced (a busy CI machine once skipped "next" at 0.4 s).
    gemini.latency = 1.0
    users = [901, 902, 903, 904]
    for user_id in users:
        tg.push_text(user_id, f"a tidy desk for {user_id}")
        await tg.wait_for(lambda t, u=user_id: t.chat(u) and len(t.chat(u)) >= 2, what=f"{user_id}'s status message")

    done = await settled(len(users), timeout=20)

    assert [g.status for g in done] == ["delivered"] * 4
    assert gemini.max_in_flight == 1
    assert places_shown(tg, 901) == []  # served at once
    assert places_shown(tg, 904) == [2, 1, 0]  # two waiting before it, then one, then next
    assert [m for m in tg.chat(904) if "photo" in m]
    await tg.wait_for(lambda t: not bot_texts(t, 904), what="the status message to go with its queue place")


def usage_of(telegram_id):
    usage = QuotaUsage.objects.filter(user__telegram_id=telegram_id).first()
    return (usage.used, usage.reserved) if usage else (0, 0)


def bot_texts(tg, chat_id):
    return [m["text"] for m in tg.chat(chat_id) if m["from"]["is_bot"] and "text" in m]


@pytest.mark.bot_settings(UPSTREAM_CONCURRENCY=1, QUEUE_UPDATE_SECONDS=0.05)
async def test_cancel_takes_a_waiting_job_out_of_the_queue_and_gives_its_quota_back(bot, tg, gemini):
    gemini.latency = 1.0
    tg.push_text(911, "a harbour at dusk")
    await gemini.wait_for(lambda g: g.requests, what="the first user's image call")
    tg.push_text(912, "a mountain hut in snow")
    await tg.wait_for(lambda t: any("ahead" in text or "next" in text for text in bot_texts(t, 912)), what="a place")

    tg.push_text(912, "/cancel")
    await tg.wait_for(lambda t: any("Stopped 1 image" in text for text in bot_texts(t, 912)), what="the answer")

    first, second = await settled(2, timeout=10)
    assert (second.user.telegram_id, second.status, second.error_code) == (912, "failed", "cancelled")
    assert await sync_to_async(usage_of)(912) == (0, 0)  # nothing charged, nothing held
    assert (first.user.telegram_id, first.status) == (911, "delivered")  # the other user is unaffected
    assert len(gemini.requests) == 1  # the stopped job never called the image API
    assert not [m for m in tg.chat(912) if "photo" in m]
    assert bot_texts(tg, 912)[-1].startswith("⏹ Stopped 1 image")  # no status message left above the answer


async def test_cancel_stops_an_image_being_made_and_releases_its_quota(bot, tg, gemini):
    gemini.latency = 5.0
    tg.push_text(921, "a lighthouse in a storm")
    await gemini.wait_for(lambda g: g.in_flight == 1, what="the image call")

    tg.push_text(921, "/cancel")
    [generation] = await settled(1, timeout=4)  # long before the image API would have answered

    assert (generation.status, generation.error_code, generation.cost_usd) == ("failed", "cancelled", 0)
    assert await sync_to_async(usage_of)(921) == (0, 0)
    await tg.wait_for(lambda t: any("Stopped 1 image" in text for text in bot_texts(t, 921)), what="the answer")
    assert not [m for m in tg.chat(921) if "photo" in m]


async def test_cancel_with_nothing_being_made_says_so(bot, tg):
    tg.push_text(931, "/cancel")
    await tg.wait_for(lambda t: bot_texts(t, 931), what="the answer")
    assert bot_texts(tg, 931) == ["No images are being made for you right now."]
