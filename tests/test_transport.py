"""The Bot API transport under network trouble: errors PTB understands, and never the token."""

import asyncio
import socket
from urllib.parse import urlsplit

import pytest
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from botcore.telegram.transport import AiohttpRequest
from tests.fakes.processes import BOT_TOKEN, free_port

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
    port = free_port()
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


class ForwardProxy:
    """An HTTP proxy on 127.0.0.1 that relays each request to its target and remembers its request line."""

    def __init__(self):
        self.requests = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _relay(self, reader, writer):
        while head := await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b"":
            method, target, version = head.split(b"\r\n", 1)[0].decode().split(" ")
            self.requests.append(f"{method} {target}")
            headers = [line for line in head.split(b"\r\n")[1:] if line]
            length = next((int(h.split(b":")[1]) for h in headers if h.lower().startswith(b"content-length:")), 0)
            body = await reader.readexactly(length)
            url = urlsplit(target)
            upstream_reader, upstream_writer = await asyncio.open_connection(url.hostname, url.port)
            headers = [h for h in headers if not h.lower().startswith(b"connection:")] + [b"Connection: close"]
            upstream_writer.write(b"\r\n".join([f"{method} {url.path} {version}".encode(), *headers, b"", b""]) + body)
            writer.write(await upstream_reader.read())  # the answer says Connection: close, so the client reconnects
            await writer.drain()
            upstream_writer.close()
        writer.close()


async def test_behind_a_proxy_calls_go_through_it_unless_the_host_is_exempted(tg, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with bot_at(tg.base_url) as bot:
            await bot.send_message(42, "through the proxy")
        assert tg.chat(42)[-1]["text"] == "through the proxy"
        assert proxy.requests == [f"POST {tg.base_url}{BOT_TOKEN}/{method}" for method in ("getMe", "sendMessage")]

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with bot_at(tg.base_url) as bot:
            await bot.send_message(42, "straight there")
        assert tg.chat(42)[-1]["text"] == "straight there"
        assert len(proxy.requests) == 2
