"""The image answers real providers and relays send all reach the user as they should."""

from io import BytesIO

from PIL import Image

from tests.conftest import settled
from tests.test_bot_generation import ALICE, image_size


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
