"""Generated hostile updates (missing fields, wrong types, giant and invisible strings, forged
buttons, stickers, voice, locations, channel posts, edits) against the webhook and the handlers:
never a 5xx, never an unhandled exception, never a paid call or a quota change, and the bot
keeps serving."""

import asyncio
import json
import logging
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import QuotaUsage
from botcore import views
from botcore.models import Generation
from botcore.telegram import updates
from botcore.telegram.application import build_application, start, stop
from tests.conftest import WEBHOOK_SECRET, WEBHOOK_URL

USER = 777
EXAMPLES = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples in every run, so CI can't turn red by chance
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u202e\u202d\u200e\u200f\u00ad\x00\x07\x1b\x7f\u0301\u3164"
# Never a prompt the bot may take: invisible and control characters around at most two visible
# ones, or far too long.
invisible = st.text(st.sampled_from(INVISIBLE), max_size=30)
hostile_text = st.one_of(
    st.builds(lambda a, b, c: a + b + c, invisible, st.text(max_size=2), invisible),
    st.builds(lambda char, count: char * count, st.characters(), st.integers(4001, 70_000)),
    st.sampled_from(["", " ", "\n\n", "/", "/generate", "/batch 9 ab", "/batch", "/hd \u200b\u200b", "/settings@x"]),
)
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
good_user = st.fixed_dictionaries(
    {"id": st.just(USER), "is_bot": st.just(False), "first_name": hostile_text},
    optional={"language_code": st.sampled_from(["en", "zh-hant", "xx", ""]), "username": hostile_text},
)
user = st.one_of(good_user, junk)
chat = st.one_of(
    st.just({"id": USER, "type": "private"}),
    st.just({"id": -100, "type": "channel", "title": "news"}),
    st.just({"id": -5, "type": "group", "title": "friends"}),
    junk,
)
file_fields = {"file_id": st.text(max_size=10), "file_unique_id": st.text(max_size=10)}
content = st.one_of(
    st.fixed_dictionaries({"text": hostile_text}),
    st.fixed_dictionaries(
        {
            "sticker": st.fixed_dictionaries(
                {
                    **file_fields,
                    "width": st.integers(),
                    "height": st.integers(),
                    "is_animated": st.booleans(),
                    "is_video": st.booleans(),
                    "type": st.just("regular"),
                }
            )
        }
    ),  # noqa: E501
    st.fixed_dictionaries({"voice": st.fixed_dictionaries({**file_fields, "duration": st.integers()})}),
    st.fixed_dictionaries(
        {"location": st.fixed_dictionaries({"latitude": st.floats(-90, 90), "longitude": st.floats(-180, 180)})}
    ),  # noqa: E501
    st.fixed_dictionaries(
        {
            "photo": st.lists(
                st.fixed_dictionaries({**file_fields, "width": st.integers(1, 9000), "height": st.integers(1, 9000)}),
                max_size=2,
            )
        },
        optional={"caption": hostile_text},
    ),  # noqa: E501
    st.fixed_dictionaries(
        {
            "document": st.fixed_dictionaries(
                file_fields,
                optional={
                    "mime_type": st.sampled_from(["image/png", "application/pdf", "x"]),
                    "file_size": st.integers(),
                },
            )
        },
        optional={"caption": hostile_text},
    ),  # noqa: E501
    st.dictionaries(
        st.sampled_from(["text", "photo", "document", "caption", "entities", "reply_to_message"]), junk, max_size=3
    ),  # noqa: E501
)
message = st.builds(
    lambda base, sender, body: {**base, **({"from": sender} if sender is not None else {}), **body},
    st.fixed_dictionaries(
        {"message_id": st.one_of(st.integers(1, 10**6), junk), "date": st.integers(0, 2**31), "chat": chat}
    ),  # noqa: E501
    st.one_of(st.none(), user),
    content,
)
forged_data = st.one_of(
    st.text(max_size=64),
    st.builds(
        lambda a, n, sig: f"r:{a}:{n}:{sig}", st.sampled_from("gvuosx"), st.integers(-5, 10**9), st.text(max_size=14)
    ),  # noqa: E501
    st.sampled_from(["s:res:8K", "s:ar:99:1", "s:", "s:res:", "r:", "::::"]),
)
callback = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=10), "from": user, "chat_instance": st.just("1"), "data": forged_data},
    optional={"message": message},
)
hostile_update = st.one_of(
    st.builds(
        lambda kind, body: {"update_id": 1, kind: body},
        st.sampled_from(["message", "edited_message", "channel_post", "edited_channel_post"]),
        message,
    ),  # noqa: E501
    st.builds(lambda body: {"update_id": 1, "callback_query": body}, callback),
    st.dictionaries(
        st.sampled_from(["update_id", "message", "callback_query", "poll", "my_chat_member"]), junk, max_size=3
    ),  # noqa: E501
    junk,
)


class Errors(logging.Handler):
    """Every ERROR or worse logged while the bot handles the updates."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def errors():
    handler = Errors()
    logging.getLogger().addHandler(handler)
    yield handler.records
    logging.getLogger().removeHandler(handler)


class LoopThread:
    """An event loop on a thread of its own, so a plain synchronous test (as hypothesis needs) can
    run the async bot and the webhook in one loop, example after example."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout=30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self):
        self.run(sync_to_async(connections.close_all)())  # the ORM's thread has its own connection
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class BotLoop(LoopThread):
    """The bot application started (handlers, error handler, services) without polling: each
    update is handed to it directly."""

    def __init__(self):
        super().__init__()
        self.application = build_application()
        self.run(start(self.application))
        self.next_id = 1

    def handle(self, data):
        """Parse `data` as the webhook and polling do, and run every handler on it to the end."""
        if isinstance(data, dict) and "update_id" in data:
            data = {**data, "update_id": self.next_id}  # else the de-duplication would skip it
            self.next_id += 1

        async def process():
            update = updates.parse(data, self.application.bot)
            if update is not None:
                await self.application.process_update(update)

        self.run(process())

    def close(self):
        self.run(stop(self.application))
        super().close()


@pytest.fixture
def bot_loop(default_tiers, bot_settings):
    bot = BotLoop()
    yield bot
    bot.close()


def nothing_paid(gemini):
    assert gemini.requests == []
    assert not Generation.objects.exclude(status__in=["refused", "failed"]).exists()
    assert not QuotaUsage.objects.exclude(used=0, reserved=0).exists()


def test_handlers_survive_hostile_updates(bot_loop, tg, gemini, errors):
    @given(hostile_update)
    @EXAMPLES
    def handled_cleanly(data):
        errors.clear()
        bot_loop.handle(data)
        assert errors == [], errors[0].getMessage()
        nothing_paid(gemini)

    handled_cleanly()

    errors.clear()
    bot_loop.handle(tg.push_text(USER, "/start"))  # and it still serves people, whatever they were called
    assert tg.chat(USER)[-1]["text"].startswith("Hi") and errors == []


@pytest.fixture
def webhook_loop(default_tiers, bot_settings):
    bot_settings.TELEGRAM_WEBHOOK_SECRET = WEBHOOK_SECRET
    loop = LoopThread()
    yield loop
    loop.run(views.stop_application())
    loop.close()


def test_webhook_answers_200_to_hostile_updates(webhook_loop, tg, gemini, errors):
    client, headers = AsyncClient(), {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    bodies = st.one_of(hostile_update.map(json.dumps), st.binary(max_size=50).map(lambda b: b.decode("latin-1")))

    numbered = iter(range(1, 10**6))

    @given(bodies)
    @EXAMPLES
    def answered(body):
        body = body.replace('"update_id": 1,', f'"update_id": {next(numbered)},', 1)  # else taken once only
        response = webhook_loop.run(client.post(WEBHOOK_URL, body, content_type="application/json", headers=headers))
        if response.status_code == 400:  # only for a body that isn't JSON at all
            with pytest.raises(ValueError):
                json.loads(body)
        else:
            assert response.status_code == 200

    answered()
    webhook_loop.run(asyncio.sleep(1))  # the updates queued by the last requests are handled
    assert errors == [], errors[0].getMessage()
    nothing_paid(gemini)
