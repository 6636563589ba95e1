"""Beyond UPSTREAM_CONCURRENCY image calls at once, jobs wait their turn and their users see where they stand."""

import re

import pytest

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
    gemini.latency = 0.4
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
    assert not [m for m in tg.chat(904) if m["from"]["is_bot"] and "text" in m]  # the status message is gone too
