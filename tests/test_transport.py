"""The Bot API transport under network trouble: errors PTB understands, and never the token."""

import socket

import pytest
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from botcore.telegram.transport import AiohttpRequest
from tests.fakes.processes import BOT_TOKEN

pytestmark = pytest.mark.asyncio


def bot_at(base_url, **timeouts):
    return Bot(BOT_TOKEN, base_url=base_url, request=AiohttpRequest(**timeouts))


async def test_calls_reach_the_bot_api_as_form_fields_and_uploads(tg):
    async with bot_at(tg.base_url) as bot:
        await bot.send_message(42, "<b>hello</b> & welcome", parse_mode="HTML")
        await bot.send_document(42, document=b"%PDF-1.4 tiny", filename="a.pdf", caption="the file")
    text, document = tg.chat(42)[-2:]
    assert text["text"] == "hello & welcome"
    assert document["document"]["file_name"] == "a.pdf" and document["caption"] == "the file"


async def test_an_unreachable_bot_api_is_a_network_error():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(NetworkError, match="Cannot connect"):
        async with bot_at(f"http://127.0.0.1:{port}/bot") as bot:
            await bot.send_message(42, "hello")


async def test_a_mistyped_bot_api_url_is_reported_without_the_token_in_it():
    with pytest.raises(NetworkError, match="htp://example.org/bot<token>/getMe") as raised:
        async with bot_at("htp://example.org/bot") as bot:
            await bot.send_message(42, "hello")
    assert BOT_TOKEN.split(":")[1] not in str(raised.value)


async def test_a_bot_api_that_never_answers_times_out():
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(TimedOut):
            async with bot_at(f"http://127.0.0.1:{port}/bot", read_timeout=0.3, write_timeout=0.2) as bot:
                await bot.send_message(42, "hello")
