"""What goes out to Telegram, and when: results first, under Telegram's limits, nothing stale.

A real ExtBot with our limiter talks to the fake Bot API with Telegram's send limits on (30 messages a
second, one a second per chat with a burst of 3, 429 beyond). Budgets are small where a test needs a
queue to form.
"""

import asyncio
import io

import pytest
from PIL import Image
from telegram.ext import ExtBot

from botcore.telegram.outbound import Dropped, Outbound, Priority
from botcore.telegram.transport import AiohttpRequest
from tests.conftest import settled
from tests.fakes import FakeTelegram
from tests.fakes.processes import BOT_TOKEN

pytestmark = pytest.mark.asyncio


@pytest.fixture
def limited_tg():
    with FakeTelegram(token=BOT_TOKEN, rate_limits=True) as fake:
        yield fake


def png_bytes(width, height):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def bot_for(tg, **limits):
    return ExtBot(BOT_TOKEN, base_url=tg.base_url, request=AiohttpRequest(), rate_limiter=Outbound(**limits))


def status(bot, chat_id, text="Working on it…"):
    return asyncio.ensure_future(bot.send_message(chat_id, text, rate_limit_args=Priority.STATUS))


async def waiting(bot, count):
    """Until `count` calls wait for their turn in the bot's limiter."""
    for _ in range(500):
        if len(bot.rate_limiter.waiting) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(bot.rate_limiter.waiting)} calls waiting, not {count}")


async def test_a_finished_image_goes_out_before_the_status_messages_waiting_for_their_turn(limited_tg):
    async with bot_for(limited_tg, per_second=5, burst=1) as bot:
        statuses = [status(bot, chat_id) for chat_id in range(1, 7)]
        await waiting(bot, 5)  # the first went at once; five wait, 0.2 s apart
        await bot.send_photo(100, photo=png_bytes(64, 64), filename="result.png")
        await asyncio.gather(*statuses)
    order = [call.params["chat_id"] for call in limited_tg.calls if call.method in ("sendMessage", "sendPhoto")]
    assert order.index(100) <= 1, order  # behind at most the status that was already on its way
    assert sorted(order) == [1, 2, 3, 4, 5, 6, 100]  # the others still arrive
    assert limited_tg.rate_limited == 0


async def test_a_status_still_waiting_when_its_chats_image_goes_out_is_never_sent(limited_tg):
    async with bot_for(limited_tg, per_second=5, burst=1) as bot:
        others = [status(bot, chat_id) for chat_id in (1, 2, 3)]
        mine = status(bot, 7)
        await waiting(bot, 3)
        await bot.send_photo(7, photo=png_bytes(64, 64), filename="result.png")
        with pytest.raises(Dropped):
            await mine
        await asyncio.gather(*others)
    assert [list(message) for message in limited_tg.chat(7) if "text" in message] == []
    assert any("photo" in message for message in limited_tg.chat(7))
    assert all(limited_tg.chat(chat_id) for chat_id in (1, 2, 3))


async def test_only_the_newest_edit_of_a_waiting_status_is_sent(limited_tg):
    async with bot_for(limited_tg, per_second=5, burst=1) as bot:
        first = await bot.send_message(5, "In the queue: 3rd")
        blockers = [status(bot, chat_id) for chat_id in (1, 2, 3)]
        edits = [
            asyncio.ensure_future(
                bot.edit_message_text(text, chat_id=5, message_id=first.message_id, rate_limit_args=Priority.STATUS)
            )
            for text in ("In the queue: 2nd", "In the queue: 1st")
        ]
        await waiting(bot, 4)
        results = await asyncio.gather(*blockers, *edits, return_exceptions=True)
    assert isinstance(results[3], Dropped)
    assert [call.params["text"] for call in limited_tg.calls_of("editMessageText")] == ["In the queue: 1st"]
    assert limited_tg.chat(5)[-1]["text"] == "In the queue: 1st"


async def test_chat_actions_are_skipped_while_messages_wait_and_sent_when_the_bot_is_idle(limited_tg):
    async with bot_for(limited_tg, per_second=5, burst=1) as bot:
        queued = [status(bot, chat_id) for chat_id in (1, 2, 3)]
        await waiting(bot, 2)
        assert await bot.send_chat_action(9, "upload_photo") is True  # what Telegram answers; nothing sent
        await asyncio.gather(*queued)
        assert limited_tg.calls_of("sendChatAction") == []
        await asyncio.sleep(1.2)  # the budget refills
        await bot.send_chat_action(9, "upload_photo")
    assert len(limited_tg.calls_of("sendChatAction")) == 1


async def test_a_burst_to_many_chats_and_to_one_chat_draws_no_429(limited_tg):
    async with bot_for(limited_tg) as bot:  # Telegram's own limits
        to_many = [bot.send_message(chat_id, f"hello {chat_id}") for chat_id in range(1000, 1070)]
        to_one = [bot.send_message(555, f"part {n}") for n in range(6)]
        await asyncio.gather(*to_many, *to_one)
    assert limited_tg.rate_limited == 0
    assert [message["text"] for message in limited_tg.chat(555)] == [f"part {n}" for n in range(6)]
    assert all(limited_tg.chat(chat_id) for chat_id in range(1000, 1070))


async def test_a_429_that_comes_anyway_is_waited_out_and_the_message_still_arrives(limited_tg):
    limited_tg.fail_next("sendPhoto", 429, retry_after=1)
    async with bot_for(limited_tg) as bot:
        started = asyncio.get_running_loop().time()
        await bot.send_photo(8, photo=png_bytes(64, 64), filename="result.png")
        waited = asyncio.get_running_loop().time() - started
        assert bot.rate_limiter.rate_limited == 1
    assert waited >= 1.0  # as long as Telegram asked: sooner would only draw another 429
    assert [call.status for call in limited_tg.calls_of("sendPhoto")] == [429, 200]


@pytest.mark.bot_settings(TELEGRAM_MESSAGES_PER_SECOND=5)
async def test_in_a_burst_everyone_gets_their_image_and_no_creating_message_is_left(bot, tg, gemini):
    """With the bot's budget small, status messages queue behind the images: those that would arrive
    after their image are never sent, those that went out are removed."""
    tg.rate_limits = True
    gemini.latency = 0.5
    users = range(800, 825)
    for user_id in users:
        tg.push_text(user_id, f"a lighthouse for visitor {user_id}")

    done = await settled(len(users), timeout=30)
    await asyncio.sleep(0.5)  # any status message that went out is deleted after its image

    assert [g.status for g in done] == ["delivered"] * len(users)
    for user_id in users:
        visible = tg.chat(user_id)
        assert [message for message in visible if "photo" in message], user_id
        assert not [message for message in visible if "Creating your image" in message.get("text", "")], visible
    assert len(tg.calls_of("sendMessage")) < len(users)  # some status messages were never worth sending
    assert tg.rate_limited == 0
