"""Every way a generation can fail ends with one clear message, the quota given back,
and nothing left saying "Creating your image…"."""

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import Ban, BannedKeyword, TelegramUser, Tier
from botcore import generations
from botcore.models import Generation
from botcore.providers import _breakers
from botcore.telegram import housekeeping, jobs
from tests.conftest import settled
from tests.fakes.openai_images import FakeOpenAIImages
from tests.test_bot_generation import ALICE, image_size, texts_in, usage_of
from tests.test_bot_results import a_user


async def fails_with(tg, generation_count=1):
    [generation] = await settled(generation_count)
    await tg.wait_for(lambda t: "Nothing was charged" in texts_in(t, ALICE)[-1], what="the failure message")
    chat = texts_in(tg, ALICE)
    assert not any("Creating your image" in text for text in chat), chat
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    assert tg.calls_of("sendPhoto") == []
    return generation, chat[-1]


@pytest.mark.parametrize(
    "answers, code, words",
    [
        ([("finish", {"finish_reason": "IMAGE_SAFETY"})], "safety", "declined this request for safety reasons"),
        ([("prompt_blocked", {"block_reason": "PROHIBITED_CONTENT"})], "safety", "for safety reasons"),
        ([("text_only", {"text": "I can't draw that."})], "no_image", "without a usable image"),
        ([("http_error", {"status": 400, "message": "Invalid argument"})], "bad_request", "couldn't process"),
        ([("http_error", {"status": 429})] * 3, "rate_limited", "very busy"),
        ([("http_error", {"status": 503})] * 3, "unavailable", "unavailable right now"),
        ([("garbage", {})] * 3, "unavailable", "unavailable right now"),
    ],
)
async def test_upstream_failure_is_explained_and_not_charged(bot, tg, gemini, answers, code, words):
    for kind, params in answers:
        gemini.enqueue(kind, **params)
    tg.push_text(ALICE, "a dragon over a city")

    generation, last_message = await fails_with(tg)

    assert (generation.status, generation.error_code) == ("failed", code)
    assert words in last_message and "Nothing was charged" in last_message
    assert generation.cost_usd == 0
    assert len(gemini.requests) == len(answers)  # transient errors were retried, permanent ones weren't


@pytest.mark.bot_settings(PROVIDER_TIMEOUT_SECONDS=0.3)
async def test_slow_upstream_times_out(bot, tg, gemini):
    gemini.enqueue("delay", seconds=3)
    tg.push_text(ALICE, "a very slow picture")
    generation, last_message = await fails_with(tg)
    assert generation.error_code == "timeout"
    assert "took too long" in last_message


async def test_transient_error_then_success_delivers_once(bot, tg, gemini):
    gemini.enqueue("http_error", status=503)
    tg.push_text(ALICE, "a lighthouse")
    [generation] = await settled(1)
    assert generation.status == "delivered"
    assert len(gemini.requests) == 2
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


@pytest.mark.bot_settings(GEMINI_API_KEY="revoked", ADMIN_TELEGRAM_IDS=[9000])
async def test_rejected_api_key_tells_the_admins_not_the_user(bot, tg, gemini):
    tg.push_text(ALICE, "a harbour at night")

    generation, last_message = await fails_with(tg)

    assert generation.error_code == "operator"
    assert "operators have been told" in last_message and "403" not in last_message
    [alert] = await tg.wait_for(lambda t: [c for c in t.calls_of("sendMessage") if c.params["chat_id"] == 9000])
    assert "rejected our credentials" in alert.params["text"]


async def test_telegram_refusing_the_photo_releases_the_quota_but_logs_the_cost(bot, tg, gemini):
    tg.fail_next("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    tg.push_text(ALICE, "a tall tower")
    [generation] = await settled(1)
    assert (generation.status, generation.error_code) == ("failed", "delivery")
    assert generation.cost_usd == Decimal("0.1345")  # the image API was paid even though the user got nothing
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    await tg.wait_for(lambda t: "It is kept for you" in texts_in(t, ALICE)[-1], what="the offer to send it as a file")
    assert len(tg.calls_of("sendPhoto")) == 1  # a refusal is not a passing fault: not tried again


async def test_banned_word_is_refused_without_calling_the_image_api(bot, tg, gemini):
    await BannedKeyword.objects.acreate(phrase="forbidden thing")
    tg.push_text(ALICE, "draw a FORBIDDEN   thing")
    [reply] = await tg.wait_for_call("sendMessage")
    assert "contains something we don't allow" in reply.params["text"]
    assert gemini.requests == []
    [generation] = await settled(1)
    assert generation.status == "refused"


async def test_banned_user_is_told_why_with_their_text_escaped(bot, tg, gemini):
    free = await Tier.objects.aget(name="free")
    user = await TelegramUser.objects.acreate(telegram_id=ALICE, tier=free)
    await Ban.objects.acreate(user=user, reason="posting <spam> & scams")
    tg.push_text(ALICE, "a nice picture")
    [reply] = await tg.wait_for_call("sendMessage")
    assert "posting &lt;spam&gt; &amp; scams" in reply.params["text"]
    assert texts_in(tg, ALICE)[-1] == "You can't generate images: posting <spam> & scams"
    assert gemini.requests == []


async def test_command_without_a_prompt_explains_how_to_use_it(bot, tg, gemini):
    tg.push_text(ALICE, "/generate")
    [reply] = await tg.wait_for_call("sendMessage")
    assert "/generate a lighthouse at dawn" in texts_in(tg, ALICE)[-1]
    assert gemini.requests == []


@pytest.fixture
def job_left_by_a_crash(default_tiers):
    """A job a crashed bot left running an hour ago (its status message since deleted by the user)."""
    user = TelegramUser.objects.create(telegram_id=ALICE, tier=Tier.objects.get(name="free"))
    (generation,) = generations.request(
        identity=generations.Identity(telegram_id=ALICE), chat_id=ALICE, prompt="a lost picture"
    )
    Generation.objects.filter(pk=generation.pk).update(
        status="running",
        status_message_id=999,
        created_at=timezone.now() - timedelta(hours=1),
        started_at=timezone.now() - timedelta(hours=1),
    )
    return user


async def test_job_left_unfinished_by_a_crash_is_released_when_the_bot_starts(job_left_by_a_crash, bot, tg):
    [generation] = await settled(1)
    assert (generation.status, generation.error_code) == ("failed", "interrupted")
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    await tg.wait_for(lambda t: any("bot restarted" in text for text in texts_in(t, ALICE)), what="the apology")


async def test_telegram_flood_limit_is_waited_out_and_the_photo_still_arrives(bot, tg, gemini):
    tg.fail_next("sendPhoto", 429, retry_after=1)
    tg.push_text(ALICE, "a hummingbird")
    [generation] = await settled(1, timeout=20)
    assert generation.status == "delivered"
    assert [call.status for call in tg.calls_of("sendPhoto")] == [429, 200]


@pytest.mark.parametrize("text", ["/paint a cat", None])
async def test_unknown_command_or_sticker_gets_a_hint(bot, tg, gemini, text):
    if text:
        tg.push_text(ALICE, text)
    else:
        sticker = {"file_id": "s1", "file_unique_id": "u1", "width": 512, "height": 512, "type": "regular"}
        tg.push_message(ALICE, {"sticker": {**sticker, "is_animated": False, "is_video": False}})
    [reply] = await tg.wait_for_call("sendMessage")
    assert "I make images from text" in reply.params["text"]
    assert gemini.requests == []


async def test_failure_is_still_told_when_telegram_fails_the_edit(bot, tg, gemini):
    gemini.enqueue("finish", finish_reason="IMAGE_SAFETY")
    tg.fail_next("editMessageText", 500, "Internal Server Error")
    tg.push_text(ALICE, "a dragon over a city")
    [generation] = await settled(1)
    await tg.wait_for(lambda t: "for safety reasons" in texts_in(t, ALICE)[-1], what="the explanation")
    assert generation.error_code == "safety"
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)


async def test_a_job_expired_while_queued_leaves_no_creating_message_when_it_comes_up(bot, tg, gemini):
    """A Celery queue so backed up that the sweeper gave the job up before a worker took it."""
    await TelegramUser.objects.acreate(telegram_id=ALICE, tier=await Tier.objects.aget(name="free"))
    identity = generations.Identity(telegram_id=ALICE)
    (generation,) = await sync_to_async(generations.request)(identity=identity, chat_id=ALICE, prompt="a slow one")
    status = await bot.bot.send_message(ALICE, "🎨 Creating your image…")
    await Generation.objects.filter(pk=generation.pk).aupdate(created_at=timezone.now() - timedelta(hours=1))
    await housekeeping.expire_stale(bot.bot)

    await jobs.run_generation([generation], bot=bot.bot, provider=None, status_message_id=status.message_id)

    assert not any("Creating your image" in text for text in texts_in(tg, ALICE))
    assert any("bot restarted" in text for text in texts_in(tg, ALICE)) and gemini.requests == []
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)


# ----- what the OpenAI-compatible images API really takes -----


@pytest.fixture
def gpt_image_relay(bot_settings):
    """OpenAI's images API serving gpt-image-1, first in the chain, Gemini behind it; request it before `bot`."""
    with FakeOpenAIImages() as fake:
        bot_settings.IMAGE_PROVIDERS = ["openai", "gemini"]
        bot_settings.OPENAI_IMAGES_BASE_URL = fake.base_url
        bot_settings.OPENAI_IMAGES_API_KEY = fake.api_key
        bot_settings.OPENAI_IMAGES_MODEL = "gpt-image-1"
        yield fake


async def test_a_4k_request_to_gpt_image_1_is_made_at_a_size_it_takes(gpt_image_relay, bot, tg, gemini):
    await a_user(ALICE, "premium")
    tg.push_text(ALICE, "a harbour at night --4k --ar 16:9")

    [generation] = await settled(1)

    assert (generation.status, generation.provider, generation.model) == ("delivered", "openai", "gpt-image-1")
    [asked] = gpt_image_relay.requests
    assert asked.fields["size"] == "1536x1024" and "response_format" not in asked.fields
    [photo] = tg.calls_of("sendPhoto")
    assert image_size(photo.files["photo"].data) == (1536, 1024)
    assert gemini.requests == []
    assert generation.cost_usd == Decimal("0.0423")  # from its usage: 1,056 image tokens at $40/M, a few words


async def test_a_relay_answer_without_usage_is_charged_at_the_models_price_per_image(gpt_image_relay, bot, tg, gemini):
    gpt_image_relay.enqueue("image", usage=False)
    tg.push_text(ALICE, "a harbour at night")

    [generation] = await settled(1)

    assert (generation.status, generation.cost_usd) == ("delivered", Decimal("0.25"))


@pytest.mark.bot_settings(ADMIN_TELEGRAM_IDS=[9000])
async def test_a_request_the_relay_rejects_as_malformed_fails_over_and_alerts_the_admins(
    gpt_image_relay, bot, tg, gemini
):
    gpt_image_relay.enqueue(
        "http_error", status=400, code="unknown_parameter", param="n", message="Unknown parameter: 'n'."
    )
    tg.push_text(ALICE, "a harbour at night")

    [generation] = await settled(1)

    assert (generation.status, generation.provider) == ("delivered", "gemini")
    assert len(gemini.requests) == 1
    [alert] = await tg.wait_for(lambda t: [c for c in t.calls_of("sendMessage") if c.params["chat_id"] == 9000])
    assert "Unknown parameter" in alert.params["text"]
    assert _breakers["openai"].consecutive_failures == 1


async def test_a_moderation_refusal_stays_the_users_answer(gpt_image_relay, bot, tg, gemini):
    gpt_image_relay.enqueue("http_error", status=400, code="moderation_blocked")
    tg.push_text(ALICE, "a dragon over a city")

    generation, last_message = await fails_with(tg)

    assert generation.error_code == "safety" and "for safety reasons" in last_message
    assert gemini.requests == []


# ----- what Gemini's finish reasons mean -----


@pytest.mark.parametrize(
    "finish_reason, code, words",
    [
        ("MAX_TOKENS", "incomplete", "stopped before your image was finished"),
        ("MALFORMED_RESPONSE", "incomplete", "stopped before your image was finished"),
        ("TOO_MANY_TOOL_CALLS", "incomplete", "stopped before your image was finished"),
        ("LANGUAGE", "language", "Please try it in English"),
        ("NO_IMAGE", "no_image", "without a usable image"),
        ("IMAGE_OTHER", "no_image", "without a usable image"),
    ],
)
async def test_a_finish_reason_is_explained_for_what_it_means(bot, tg, gemini, finish_reason, code, words):
    gemini.enqueue("finish", finish_reason=finish_reason)
    tg.push_text(ALICE, "a dragon over a city")

    generation, last_message = await fails_with(tg)

    assert generation.error_code == code and words in last_message
    assert len(gemini.requests) == 1


@pytest.mark.bot_settings(ADMIN_TELEGRAM_IDS=[9000])
@pytest.mark.parametrize("finish_reason", ["PUP_LIMITED_DISABLED", "MISSING_THOUGHT_SIGNATURE"])
async def test_a_finish_reason_only_an_operator_can_fix_alerts_the_admins(bot, tg, gemini, finish_reason):
    gemini.enqueue("finish", finish_reason=finish_reason)
    tg.push_text(ALICE, "a harbour at night")

    generation, last_message = await fails_with(tg)

    assert generation.error_code == "operator" and "operators have been told" in last_message
    [alert] = await tg.wait_for(lambda t: [c for c in t.calls_of("sendMessage") if c.params["chat_id"] == 9000])
    assert finish_reason in alert.params["text"]
