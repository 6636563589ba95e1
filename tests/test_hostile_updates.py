"""Updates Telegram (or a broken relay, or an attacker) sends that no handler expects: the bot
skips or answers them cleanly, charges nothing, and keeps serving everyone else."""

import logging

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from botcore.models import Generation
from tests.conftest import WEBHOOK_SECRET as SECRET
from tests.conftest import WEBHOOK_URL as URL
from tests.conftest import settled
from tests.test_bot_generation import ALICE, texts_in, usage_of

BOB = 502


@pytest.mark.parametrize(
    "junk",
    [{"message": {}}, {"message": {"message_id": "x", "chat": 5}}, "not an update", 42, None, [], {"update_id": "7"}],
)
async def test_polling_skips_an_unreadable_update_and_serves_the_next(bot, tg, gemini, caplog, junk):
    tg.push_raw(junk, numbered=isinstance(junk, dict) and "update_id" not in junk)
    tg.push_text(ALICE, "a lighthouse in fog")

    [generation] = await settled(1)

    assert generation.status == "delivered"
    skipped = [r for r in caplog.records if "unreadable update" in r.getMessage()]
    assert len(skipped) == 1 and len(skipped[0].getMessage()) < 1000
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]


async def test_the_same_update_twice_makes_one_image(webhook, async_client, tg, gemini):
    update = tg.push_text(ALICE, "a lantern festival")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    for _ in range(2):  # Telegram re-sends when our first answer was slow
        response = await async_client.post(URL, update, content_type="application/json", headers=headers)
        assert response.status_code == 200

    [generation] = await settled(1)
    await tg.wait_for_call("sendPhoto")
    assert generation.status == "delivered"
    assert await Generation.objects.acount() == 1
    assert len(gemini.requests) == 1 and await sync_to_async(usage_of)(ALICE) == (1, 0)


@pytest.mark.parametrize("body", ['{"update_id": 9, "message": {}}', "[1, 2]", '"hello"', "{}"])
async def test_webhook_answers_200_to_an_unreadable_update(webhook, async_client, tg, gemini, body):
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    response = await async_client.post(URL, body, content_type="application/json", headers=headers)
    assert response.status_code == 200  # anything else and Telegram sends it again and again

    update = tg.push_text(ALICE, "a lantern festival")
    await async_client.post(URL, update, content_type="application/json", headers=headers)
    [generation] = await settled(1)
    assert generation.status == "delivered"


async def test_editing_an_old_prompt_starts_nothing(bot, tg, gemini):
    sent = tg.push_text(ALICE, "a castle on a hill")
    [generation] = await settled(1)
    message = dict(sent["message"], text="a castle on a hill at night", edit_date=sent["message"]["date"] + 5)

    tg.push_update({"edited_message": message})

    await tg.wait_for(lambda t: "Editing a message doesn't start" in texts_in(t, ALICE)[-1], what="the hint")
    assert await Generation.objects.acount() == 1 and len(gemini.requests) == 1
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


async def test_a_shared_live_location_moving_gets_no_answers(bot, tg, gemini):
    location = {"location": {"latitude": 25.03, "longitude": 121.56, "live_period": 900}}
    sent = tg.push_message(ALICE, location)
    [hint] = await tg.wait_for_call("sendMessage")  # the location itself: what the bot makes

    for step in range(3):  # Telegram sends each move as an edit of that message
        moved = {**sent["message"], "location": {**location["location"], "latitude": 25.03 + step / 100}}
        tg.push_update({"edited_message": {**moved, "edit_date": sent["message"]["date"] + step + 1}})
    tg.push_text(ALICE, "/help")

    await tg.wait_for(lambda t: "How to use me" in texts_in(t, ALICE)[-1], what="the help")
    assert len(tg.calls_of("sendMessage")) == 2


async def test_a_message_without_a_sender_gets_an_answer_not_a_crash(bot, tg, gemini, caplog):
    message = {"message_id": 1, "chat": {"id": ALICE, "type": "private"}, "date": 1, "text": "a red fox"}
    tg.push_update({"message": message})
    tg.push_update({"channel_post": {**message, "chat": {"id": -100, "type": "channel", "title": "news"}}})
    tg.push_text(BOB, "a blue fox")

    [generation] = await settled(1)
    assert generation.user.telegram_id == BOB
    await tg.wait_for(lambda t: any("can't tell who sent" in text for text in texts_in(t, ALICE)), what="an answer")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_button_with_unknown_data_is_answered(bot, tg, gemini):
    tg.push_text(ALICE, "/help")
    [help_message] = await tg.wait_for_call("sendMessage")
    [shown] = [m for m in tg.chat(ALICE) if m.get("text", "").startswith("How to use me")]

    tg.push_callback(ALICE, shown["message_id"], "zz:forged")

    [answer] = await tg.wait_for_call("answerCallbackQuery")
    assert "doesn't work any more" in answer.params["text"]
    assert gemini.requests == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database server that can end connections")
async def test_a_prompt_after_the_database_ended_the_connection_is_served(bot, tg, gemini):
    tg.push_text(ALICE, "a first image")
    await settled(1)

    def backend_pid():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def terminate(pid):
        with connection.cursor() as cursor:  # what a restart, a failover or an idle timeout does
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            return cursor.fetchone()[0]

    bots_connection = await sync_to_async(backend_pid)()  # the thread the bot's queries run on
    assert await sync_to_async(terminate, thread_sensitive=False)(bots_connection)
    tg.push_text(ALICE, "a second image")

    await tg.wait_for_call("sendPhoto", count=2)  # the test's own queries share the bot's ORM thread
    generations = await settled(2)
    assert [g.status for g in generations] == ["delivered", "delivered"]
    assert not any("something went wrong" in text for text in texts_in(tg, ALICE))


@pytest.fixture
def menu_refused(tg):
    tg.fail_next("setMyCommands", 500)


async def test_a_bot_api_refusing_the_command_menu_does_not_stop_the_bot(menu_refused, bot, tg, gemini):
    tg.push_text(ALICE, "a red fox")

    [generation] = await settled(1)

    assert generation.status == "delivered"
    assert [call.status for call in tg.calls_of("setMyCommands")] == [500]


async def test_nul_characters_in_a_name_or_a_prompt_are_dropped_not_a_crash(bot, tg, gemini):
    tg.push_text(ALICE, "a red\x00 fox\x00", first_name="Al\x00ice")  # PostgreSQL text can't hold NUL

    [generation] = await settled(1)

    assert generation.status == "delivered" and generation.prompt == "a red fox"
    assert generation.user.first_name == "Alice"
