"""End to end: what a user can do with a result (the buttons under it, /settings, /batch), the
cache that answers a repeated request for free, and the relay that serves when Gemini is down."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts import days
from accounts.models import QuotaUsage, TelegramUser, Tier
from botcore.models import Generation
from tests.conftest import settled
from tests.fakes.openai_images import FakeOpenAIImages
from tests.test_bot_generation import ALICE, image_size, texts_in, usage_of
from tests.test_bot_images import image_format

BOB = 502
PROMPT = "a lighthouse at dawn"
LABELS = {"regenerate": "Regenerate", "variation": "Variation", "upscale": "4K", "original": "Original"}
MODEL = "gemini-3-pro-image-preview"


async def a_user(telegram_id, tier="free"):
    return await TelegramUser.objects.acreate(
        telegram_id=telegram_id, username=f"user{telegram_id}", tier=await Tier.objects.aget(name=tier)
    )


def message_of(tg, generation):
    """The chat message carrying a result, as the user sees it now."""
    return next(m for m in tg.chat(generation.chat_id) if m["message_id"] == generation.result_message_id)


def buttons_of(message):
    """{action: callback_data} of the buttons under a result, found by their labels."""
    shown = {b["text"]: b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row}
    return {action: next(data for text, data in shown.items() if label in text) for action, label in LABELS.items()}


async def a_result(tg, user_id=ALICE, prompt=PROMPT, count=1):
    """Ask for an image and wait for it: (its Generation, its message, the photo upload's bytes)."""
    tg.push_text(user_id, prompt)
    generation = (await settled(count))[-1]
    assert generation.status == "delivered", generation.error_message
    photo = next(c for c in tg.calls_of("sendPhoto") if c.params["chat_id"] == user_id and "photo" in c.files)
    return generation, message_of(tg, generation), photo.files["photo"].data


def press(tg, message, action, user_id=ALICE):
    return tg.push_callback(user_id, message["message_id"], buttons_of(message)[action], chat_id=message["chat"]["id"])


async def told(tg, words, chat_id=ALICE):
    """Wait for a message containing `words` in the chat; its text."""
    found = await tg.wait_for(
        lambda t: next((text for text in texts_in(t, chat_id) if words in text), None), what=repr(words)
    )
    return found


async def alert(tg):
    """The answer to the one button press of the test."""
    [answer] = await tg.wait_for_call("answerCallbackQuery")
    return answer.params


async def generation_count():
    return await Generation.objects.acount()


# ----- the buttons under a result -----


async def test_result_photo_carries_four_small_buttons(bot, tg, gemini):
    generation, message, _ = await a_result(tg)

    rows = message["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [["🔁 Regenerate", "🎨 Variation"], ["⬆️ 4K", "📄 Original"]]
    data = [b["callback_data"] for row in rows for b in row]
    assert all(len(d.encode()) <= 64 for d in data), data  # Telegram's limit for callback_data
    assert len(set(data)) == 4 and all(str(generation.pk) in d for d in data)


async def test_regenerate_makes_a_fresh_image_of_the_same_request_and_charges_it(bot, tg, gemini):
    first, message, first_photo = await a_result(tg)

    press(tg, message, "regenerate")
    _, again = await settled(2)

    assert (again.status, again.kind, again.parent_id) == ("delivered", "regenerate", first.pk)
    assert [r.prompt for r in gemini.requests] == [PROMPT, PROMPT]  # the cache did not answer for it
    assert not again.cache_hit and again.provider == "gemini" and again.cost_usd == Decimal("0.1345")
    [_, photo] = tg.calls_of("sendPhoto")
    assert "photo" in photo.files  # a newly made image, uploaded
    assert photo.params["reply_parameters"]["message_id"] == message["message_id"]
    assert await sync_to_async(usage_of)(ALICE) == (2, 0)
    assert not (await alert(tg)).get("show_alert")


async def test_variation_sends_the_result_itself_to_gemini(bot, tg, gemini):
    first, message, first_photo = await a_result(tg)

    press(tg, message, "variation")
    _, variation = await settled(2)

    assert (variation.status, variation.kind, variation.parent_id) == ("delivered", "variation", first.pk)
    asked = gemini.requests[1]
    assert asked.images == [("image/png", first_photo)]
    assert "variation" in asked.prompt.lower() and PROMPT in asked.prompt
    assert await sync_to_async(usage_of)(ALICE) == (2, 0)


async def test_4k_button_is_refused_on_a_plan_without_4k(bot, tg, gemini):
    _, message, _ = await a_result(tg)

    press(tg, message, "upscale")

    await told(tg, "4K images aren't included in your plan")
    assert len(gemini.requests) == 1
    assert await generation_count() == 1
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


async def test_4k_button_re_renders_the_result_at_4k_on_premium(bot, tg, gemini):
    await a_user(ALICE, "premium")
    first, message, first_photo = await a_result(tg)

    press(tg, message, "upscale")
    _, upscaled = await settled(2, timeout=20)

    assert (upscaled.status, upscaled.kind, upscaled.parent_id) == ("delivered", "upscale", first.pk)
    # 2,000 image tokens out, and the result sent back in as input tokens
    assert (upscaled.resolution, upscaled.cost_usd) == ("4K", Decimal("0.2406"))
    asked = gemini.requests[1]
    assert asked.body["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "4K"}
    assert asked.images == [("image/png", first_photo)]
    [document] = tg.calls_of("sendDocument")  # 4K is more than a photo shows: the file comes too
    assert image_size(document.files["document"].data) == (4096, 4096)
    assert await sync_to_async(usage_of)(ALICE) == (2, 0)


async def test_original_button_sends_the_kept_original_file_for_free(bot, tg, gemini):
    first, message, first_photo = await a_result(tg)
    assert tg.calls_of("sendDocument") == []  # the 2K PNG was shown as is: no file with it

    press(tg, message, "original")
    [document] = await tg.wait_for_call("sendDocument")

    original = document.files["document"].data
    assert original == first_photo and image_format(original) == "PNG"
    assert document.files["document"].filename == f"nanobot-{first.pk}.png"
    assert document.params["reply_parameters"]["message_id"] == message["message_id"]
    assert len(gemini.requests) == 1 and await generation_count() == 1
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


# ----- presses that must not work -----


async def test_someone_elses_button_is_refused_with_an_alert(bot, tg, gemini):
    _, message, _ = await a_result(tg)

    press(tg, message, "regenerate", user_id=BOB)  # Alice's button data, pressed by Bob

    answer = await alert(tg)
    assert answer["show_alert"] is True and "someone else's image" in answer["text"]
    assert len(gemini.requests) == 1 and await generation_count() == 1
    assert tg.calls_of("sendDocument") == [] and len(tg.calls_of("sendPhoto")) == 1


@pytest.mark.parametrize("action", ["regenerate", "original"])
async def test_button_pointed_at_another_users_image_is_refused(bot, tg, gemini, action):
    bobs, _, _ = await a_result(tg, BOB, "a secret garden")
    _, message, _ = await a_result(tg, ALICE, PROMPT, count=2)
    prefix, letter, _, signature = buttons_of(message)[action].split(":")

    forged = f"{prefix}:{letter}:{bobs.pk}:{signature}"  # Alice's own signature, Bob's image
    tg.push_callback(ALICE, message["message_id"], forged)

    answer = await alert(tg)
    assert answer["show_alert"] is True and "someone else's image" in answer["text"]
    assert len(gemini.requests) == 2 and await generation_count() == 2
    assert tg.calls_of("sendDocument") == [] and len(tg.calls_of("sendPhoto")) == 2


@pytest.mark.parametrize("action", ["regenerate", "original"])
async def test_button_under_a_result_past_its_keeping_time_is_politely_refused(bot, tg, gemini, settings, action):
    first, message, _ = await a_result(tg)
    long_ago = timezone.now() - timedelta(days=settings.RESULT_KEEP_DAYS, hours=1)
    await Generation.objects.filter(pk=first.pk).aupdate(finished_at=long_ago)

    press(tg, message, action)

    await told(tg, "That image is too old for this; please send a new request.")
    assert len(gemini.requests) == 1 and await generation_count() == 1
    assert tg.calls_of("sendDocument") == []
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


async def test_regenerating_a_variation_makes_another_variation_of_the_same_image(bot, tg, gemini):
    first, message, first_photo = await a_result(tg)
    press(tg, message, "variation")
    _, variation = await settled(2)

    press(tg, message_of(tg, variation), "regenerate")
    *_, again = await settled(3)

    assert (again.status, again.kind, again.parent_id) == ("delivered", "regenerate", variation.pk)
    assert gemini.requests[2].prompt == gemini.requests[1].prompt  # the variation instruction again
    assert gemini.requests[2].images == [("image/png", first_photo)]  # ... of the same image


async def test_regenerating_twice_in_a_row_still_repeats_the_variation(bot, tg, gemini):
    first, message, first_photo = await a_result(tg)
    press(tg, message, "variation")
    _, variation = await settled(2)
    press(tg, message_of(tg, variation), "regenerate")
    *_, again = await settled(3)

    press(tg, message_of(tg, again), "regenerate")
    *_, third = await settled(4)

    assert (third.status, third.kind, third.parent_id) == ("delivered", "regenerate", again.pk)
    assert gemini.requests[3].prompt == gemini.requests[1].prompt
    assert gemini.requests[3].images == [("image/png", first_photo)]


# ----- the cache -----


async def test_the_same_request_again_is_answered_from_the_cache_free_of_charge(bot, tg, gemini):
    first, _, _ = await a_result(tg, ALICE, PROMPT)

    tg.push_text(BOB, "A lighthouse   at DAWN")  # the same request, however it is typed
    _, cached = await settled(2)

    assert len(gemini.requests) == 1
    assert cached.user.telegram_id == BOB and cached.status == "delivered"
    assert (cached.cache_hit, cached.provider, cached.cost_usd) == (True, "cache", Decimal(0))
    [_, resent] = tg.calls_of("sendPhoto")
    assert resent.files == {} and resent.params["photo"] == first.file_id  # Telegram's copy, not an upload
    assert resent.params["chat_id"] == BOB and resent.params["caption"].startswith("<i>A lighthouse at DAWN</i>")
    assert cached.file_id == first.file_id
    assert await sync_to_async(usage_of)(BOB) == (0, 0)
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)
    # Bob's copy carries buttons that work for Bob, not Alice's.
    press(tg, message_of(tg, cached), "original", user_id=BOB)
    [document] = await tg.wait_for_call("sendDocument")
    assert document.params["chat_id"] == BOB and image_format(document.files["document"].data) == "PNG"


@pytest.mark.bot_settings(RESULT_CACHE_SECONDS=0)
async def test_with_the_cache_off_the_same_request_is_made_again(bot, tg, gemini):
    await a_result(tg, ALICE, PROMPT)

    tg.push_text(ALICE, PROMPT)
    _, second = await settled(2)

    assert len(gemini.requests) == 2
    assert (second.cache_hit, second.provider, second.cost_usd) == (False, "gemini", Decimal("0.1345"))
    assert await sync_to_async(usage_of)(ALICE) == (2, 0)


async def test_cached_4k_result_still_comes_with_its_original_file(bot, tg, gemini):
    await a_user(ALICE, "premium")
    await a_user(BOB, "premium")
    tg.push_text(ALICE, "/hd a castle in the clouds")
    [first] = await settled(1, timeout=20)
    assert first.document_file_id

    tg.push_text(BOB, "/hd a castle in the clouds")
    _, cached = await settled(2)

    assert cached.cache_hit and len(gemini.requests) == 1
    documents = await tg.wait_for(
        lambda t: [c for c in t.calls_of("sendDocument") if c.params["chat_id"] == BOB],
        timeout=3,
        what="Bob's original",
    )
    assert documents[0].params["document"] == first.document_file_id


# ----- /batch -----


async def test_batch_with_one_failed_image_delivers_and_charges_the_other_three(bot, tg, gemini):
    await a_user(ALICE, "premium")
    gemini.enqueue("finish", finish_reason="SAFETY")  # one of the four answers is a refusal

    tg.push_text(ALICE, "/batch 4 a lighthouse")
    done = await settled(4, timeout=20)
    await told(tg, "1 of 4 images couldn't be made")

    assert len(gemini.requests) == 4
    [album] = tg.calls_of("sendMediaGroup")
    assert [item["type"] for item in album.params["media"]] == ["photo"] * 3
    assert album.params["media"][0]["caption"].startswith("<i>a lighthouse</i>")
    [choices] = [c for c in tg.calls_of("sendMessage") if "reply_markup" in c.params]
    assert "Your 3 images are above" in choices.params["text"]
    rows = choices.params["reply_markup"]["inline_keyboard"]
    assert [len(row) for row in rows] == [4, 4, 4]
    assert all(len(b["callback_data"].encode()) <= 64 for row in rows for b in row)
    assert len({g.batch_key for g in done}) == 1 and done[0].batch_key
    assert sorted(g.status for g in done) == ["delivered"] * 3 + ["failed"]
    delivered = {g.pk for g in done if g.status == "delivered"}
    assert all(str(row[0]["callback_data"]).split(":")[2] in map(str, delivered) for row in rows)
    assert [g.error_code for g in done if g.status == "failed"] == ["safety"]
    assert await sync_to_async(usage_of)(ALICE) == (3, 0)
    await tg.wait_for(lambda t: not any("Creating your image" in text for text in texts_in(t, ALICE)))


async def test_batch_whose_album_telegram_refuses_is_offered_as_files_in_one_message(bot, tg, gemini):
    await a_user(ALICE, "premium")
    gemini.enqueue("finish", finish_reason="SAFETY")
    tg.fail_next("sendMediaGroup", 400, "Bad Request: MEDIA_EMPTY")

    tg.push_text(ALICE, "/batch 4 a lighthouse")
    done = await settled(4, timeout=20)
    await told(tg, "It is kept for you")
    [offer] = [m for m in tg.chat(ALICE) if "It is kept for you" in m.get("text", "")]
    assert len(offer["reply_markup"]["inline_keyboard"]) == 3  # a button for each image made

    assert sorted(g.error_code for g in done) == ["delivery"] * 3 + ["safety"]
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    await asyncio.sleep(0.3)  # anything else the job says comes right after
    assert not any("1 of 4" in text for text in texts_in(tg, ALICE)), texts_in(tg, ALICE)


async def test_batch_of_more_than_four_is_refused(bot, tg, gemini):
    await a_user(ALICE, "premium")
    tg.push_text(ALICE, "/batch 5 a lighthouse")

    await told(tg, "A batch makes 2 to 4 images")
    assert gemini.requests == [] and await generation_count() == 0
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)


async def test_batch_larger_than_the_images_left_is_refused_and_reserves_nothing(bot, tg, gemini):
    alice = await a_user(ALICE)
    await QuotaUsage.objects.acreate(user=alice, day=days.today(), used=3)  # 2 of 5 left

    tg.push_text(ALICE, "/batch 3 a lighthouse")

    await told(tg, "You asked for 3 images but have 2 left today.")
    assert gemini.requests == [] and await generation_count() == 0
    assert await sync_to_async(usage_of)(ALICE) == (3, 0)


# ----- /settings -----


async def settings_message(tg):
    tg.push_text(ALICE, "/settings")
    return await tg.wait_for(
        lambda t: next((m for m in t.chat(ALICE) if "Your defaults" in m.get("text", "")), None), what="/settings"
    )


async def test_settings_button_changes_the_aspect_ratio_of_the_next_image(bot, tg, gemini):
    message = await settings_message(tg)
    keyboard = [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row]
    assert "s:ar:16:9" in keyboard and "s:res:4K" in keyboard

    tg.push_callback(ALICE, message["message_id"], "s:ar:16:9")
    answer = await alert(tg)
    assert answer["text"] == "Saved: 2K, 16:9." and not answer.get("show_alert")
    alice = await TelegramUser.objects.aget(telegram_id=ALICE)
    assert (alice.resolution, alice.aspect_ratio) == ("2K", "16:9")
    shown = await tg.wait_for(
        lambda t: next((m for m in t.chat(ALICE) if "2K, 16:9" in m.get("text", "")), None), what="the edit"
    )
    assert any(b["text"] == "• 16:9 •" for row in shown["reply_markup"]["inline_keyboard"] for b in row)

    _, _, photo = await a_result(tg)

    assert gemini.requests[0].body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert image_size(photo) == (2752, 1536)


async def test_settings_4k_button_on_a_plan_without_4k_is_refused_with_an_alert(bot, tg, gemini):
    message = await settings_message(tg)
    locked = [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row if "4K" in b["text"]]
    assert locked == ["🔒 4K"]

    tg.push_callback(ALICE, message["message_id"], "s:res:4K")

    answer = await alert(tg)
    assert answer["show_alert"] is True and "4K images aren't included in your plan" in answer["text"]
    alice = await TelegramUser.objects.aget(telegram_id=ALICE)
    assert alice.resolution == "2K"


# ----- failover to the OpenAI-compatible relay -----

RELAY_PRICES = {
    "gemini": {MODEL: {"2K": Decimal("0.134")}},
    "openai": {MODEL: {"2K": Decimal("0.05")}},
}


@pytest.fixture
def relay(bot_settings):
    """A fake OpenAI-compatible relay, second in the chain; request it before `bot`."""
    with FakeOpenAIImages() as fake:
        bot_settings.IMAGE_PROVIDERS = ["gemini", "openai"]
        bot_settings.OPENAI_IMAGES_BASE_URL = fake.base_url
        bot_settings.OPENAI_IMAGES_API_KEY = fake.api_key
        bot_settings.OPENAI_IMAGES_MODEL = MODEL
        yield fake


@pytest.mark.bot_settings(IMAGE_PRICES=RELAY_PRICES)
async def test_gemini_down_the_relay_makes_the_image_at_its_own_price(relay, bot, tg, gemini):
    gemini.enqueue("http_error", status=503)

    generation, _, photo = await a_result(tg)

    assert len(gemini.requests) == 1  # one try, then straight on to the relay
    [asked] = relay.requests
    assert asked.path == "/v1/images/generations" and asked.prompt == PROMPT
    assert asked.fields["size"] == "2048x2048"
    assert (generation.provider, generation.model) == ("openai", MODEL)
    assert generation.cost_usd == Decimal("0.05")
    assert image_size(photo) == (2048, 2048)
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


async def test_a_4k_batch_comes_with_its_original_files_below_the_album(bot, tg, gemini):
    await a_user(ALICE, "premium")
    tg.push_text(ALICE, "/batch 2 a harbour --4k")
    done = await settled(2, timeout=30)

    photos, files = tg.calls_of("sendMediaGroup")
    assert [item["type"] for item in files.params["media"]] == ["document", "document"]
    originals = [files.files[item["media"].removeprefix("attach://")].data for item in files.params["media"]]
    assert [image_size(data) for data in originals] == [(4096, 4096)] * 2
    assert all(g.document_file_id and g.document_message_id for g in done)


@pytest.mark.bot_settings(DELIVERY_MODE="document")
async def test_document_mode_sends_a_batch_as_an_album_of_files(bot, tg, gemini):
    await a_user(ALICE, "premium")
    tg.push_text(ALICE, "/batch 2 a harbour")
    done = await settled(2, timeout=30)

    [album] = tg.calls_of("sendMediaGroup")
    assert [item["type"] for item in album.params["media"]] == ["document", "document"]
    assert album.params["media"][0]["caption"].startswith("<i>a harbour</i>")
    assert all(g.document_file_id and not g.file_id for g in done)
