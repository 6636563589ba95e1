"""Telegram failing to take a paid image: passing faults are waited out, and an image that still
can't be sent is kept and offered with a button, never charged and lost."""

import asyncio

from asgiref.sync import sync_to_async

from tests.conftest import settled
from tests.test_bot_generation import ALICE, texts_in, usage_of
from tests.test_bot_results import told


async def test_one_failed_photo_upload_is_tried_again_and_charged_once(bot, tg, gemini):
    tg.fail_next("sendPhoto", 500)
    tg.push_text(ALICE, "a lighthouse in a storm")

    [generation] = await settled(1)

    assert generation.status == "delivered"
    assert [call.status for call in tg.calls_of("sendPhoto")] == [500, 200]
    assert [m for m in tg.chat(ALICE) if "photo" in m] != []
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


async def test_an_image_telegram_keeps_refusing_is_kept_and_sent_on_a_press(bot, tg, gemini):
    tg.fail_next("sendPhoto", 502, "Bad Gateway", times=20)
    tg.push_text(ALICE, "a lighthouse in a storm")

    [generation] = await settled(1, timeout=20)
    await told(tg, "It is kept for you")

    assert (generation.status, generation.error_code) == ("failed", "delivery")
    assert generation.original and generation.cost_usd > 0  # paid for, logged, and not thrown away
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    [offer] = [m for m in tg.chat(ALICE) if "It is kept for you" in m.get("text", "")]
    assert "Nothing was charged" in offer["text"] and "Creating your image" not in "".join(texts_in(tg, ALICE))

    [[button]] = offer["reply_markup"]["inline_keyboard"]
    tg.push_callback(ALICE, offer["message_id"], button["callback_data"])

    [document] = await tg.wait_for_call("sendDocument")
    assert document.status == 200 and document.files["document"].data[:8] == b"\x89PNG\r\n\x1a\n"
    for _ in range(200):  # the bot notes the sent file once Telegram has answered
        await generation.arefresh_from_db()
        if generation.document_message_id:
            break
        await asyncio.sleep(0.05)
    assert (generation.status, generation.document_message_id) == ("delivered", tg.chat(ALICE)[-1]["message_id"])
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)  # as the message said: nothing charged


async def test_a_failed_status_message_does_not_stop_the_job(bot, tg, gemini):
    tg.fail_next("sendMessage", 500)
    tg.push_text(ALICE, "a lighthouse in a storm")

    [generation] = await settled(1)

    assert generation.status == "delivered" and generation.status_message_id is None
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


async def test_pressing_send_twice_sends_the_kept_image_once(bot, tg, gemini):
    tg.fail_next("sendPhoto", 502, "Bad Gateway", times=20)
    tg.push_text(ALICE, "a lighthouse in a storm")
    await settled(1, timeout=20)
    await told(tg, "It is kept for you")
    [offer] = [m for m in tg.chat(ALICE) if "It is kept for you" in m.get("text", "")]
    [[button]] = offer["reply_markup"]["inline_keyboard"]

    for _ in range(2):  # an impatient double tap: handled at the same time
        tg.push_callback(ALICE, offer["message_id"], button["callback_data"])

    await told(tg, "This image was sent to you already")
    await tg.wait_for_call("sendDocument")
    assert len([m for m in tg.chat(ALICE) if "document" in m]) == 1
