"""The image answers real providers and relays send all reach the user as they should."""

from io import BytesIO

import pytest
from asgiref.sync import sync_to_async
from PIL import Image

from tests.conftest import settled
from tests.fakes.images import png_bomb
from tests.test_bot_generation import ALICE, image_size, texts_in, usage_of


def image_format(data):
    with Image.open(BytesIO(data)) as image:
        return image.format


async def test_image_too_big_for_a_photo_arrives_as_a_preview_and_the_original_file(bot, tg, gemini):
    gemini.noisy = True  # random pixels: a 2K PNG of about 12 MB, over the 10 MB photo limit
    tg.push_text(ALICE, "television static")

    [generation] = await settled(1, timeout=30)
    [photo] = tg.calls_of("sendPhoto")
    [document] = tg.calls_of("sendDocument")

    assert generation.status == "delivered"
    original = document.files["document"].data
    assert len(original) > 10 * 1024 * 1024 and image_format(original) == "PNG"
    preview = photo.files["photo"].data
    assert len(preview) <= 10 * 1024 * 1024 and image_format(preview) == "JPEG"
    assert image_size(preview) == image_size(original) == (2048, 2048)


async def test_jpeg_answer_is_sent_as_it_came(bot, tg, gemini):
    gemini.image_format = "JPEG"
    tg.push_text(ALICE, "a bowl of ramen")
    [generation] = await settled(1)
    [photo] = tg.calls_of("sendPhoto")
    assert generation.status == "delivered"
    assert image_format(photo.files["photo"].data) == "JPEG"
    assert tg.calls_of("sendDocument") == []  # a 2K photo is shown at full size: no extra file


async def test_relay_answer_with_a_data_uri_is_accepted(bot, tg, gemini):
    gemini.enqueue("data_uri")
    tg.push_text(ALICE, "a paper boat")
    [generation] = await settled(1)
    assert generation.status == "delivered"
    assert len(tg.calls_of("sendPhoto")) == 1


async def test_draft_thought_images_are_skipped_for_the_final_one(bot, tg, gemini):
    gemini.with_thought_image = True
    tg.push_text(ALICE, "a mountain village")
    await settled(1)
    [photo] = tg.calls_of("sendPhoto")
    assert image_size(photo.files["photo"].data) == (2048, 2048)


async def test_a_long_prompt_is_cut_to_telegrams_caption_limit_without_breaking_its_html(bot, tg, gemini):
    prompt = ("a <b>cat</b> & a 🐱 dog " * 200)[:3990]  # escaped, then cut: no "&amp;" or tag split in half
    tg.push_text(ALICE, prompt)
    [generation] = await settled(1)
    assert generation.status == "delivered"
    caption = tg.chat(ALICE)[-1]["caption"]
    assert len(caption.encode("utf-16-le")) // 2 <= 1024
    assert caption.startswith("a <b>cat</b> & a 🐱 dog") and caption.endswith("…\n2K · 1:1")


@pytest.mark.bot_settings(DELIVERY_MODE="document")
async def test_document_mode_sends_only_the_original_file_with_the_buttons(bot, tg, gemini):
    tg.push_text(ALICE, "a quiet library")
    [generation] = await settled(1)
    [document] = tg.calls_of("sendDocument")
    assert tg.calls_of("sendPhoto") == []
    assert image_format(document.files["document"].data) == "PNG"
    assert "a quiet library" in document.params["caption"] and document.params["reply_markup"]["inline_keyboard"]
    assert generation.document_file_id and not generation.file_id


@pytest.mark.bot_settings(DELIVERY_MODE="photo")
async def test_photo_mode_sends_no_file_even_when_the_photo_is_a_preview(bot, tg, gemini):
    gemini.noisy = True  # over 10 MB: only a preview fits as a photo
    tg.push_text(ALICE, "television static")
    [generation] = await settled(1, timeout=30)
    [photo] = tg.calls_of("sendPhoto")
    assert tg.calls_of("sendDocument") == []
    assert image_format(photo.files["photo"].data) == "JPEG" and generation.status == "delivered"


async def test_a_relay_answering_with_a_decompression_bomb_is_not_decoded_nor_charged(bot, tg, gemini):
    gemini.enqueue("these_bytes", data=png_bomb(13000, 13000))  # 160 KB, 169 megapixels
    tg.push_text(ALICE, "a quiet harbour")

    [generation] = await settled(1, timeout=30)

    assert (generation.status, generation.error_code) == ("failed", "no_image")
    assert tg.calls_of("sendPhoto") == [] and tg.calls_of("sendDocument") == []
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)
    await tg.wait_for(lambda t: "without a usable image" in texts_in(t, ALICE)[-1], what="the explanation")
