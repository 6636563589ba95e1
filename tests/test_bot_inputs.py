"""End to end: what users send besides plain text (photos, image files, albums, replies, inline
options) reaches Gemini as it should, or is turned away before anything is paid for."""

import asyncio
import base64
from io import BytesIO

import pytest
from asgiref.sync import sync_to_async
from PIL import Image

from botcore.models import Generation
from tests.conftest import settled
from tests.fakes.images import png_bomb
from tests.test_bot_generation import ALICE, texts_in, usage_of

NOT_AN_IMAGE = "JPEG, PNG or WEBP"
NEEDS_CAPTION = "Add a caption saying what to do with your photo"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n"


def picture(color, fmt="JPEG", size=(64, 48)):
    buf = BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def stored(tg, file_id):
    """The bytes the fake Bot API serves for a file_id (for a photo: its re-encoded JPEG)."""
    return tg._files[file_id]["data"]


def largest(update):
    return update["message"]["photo"][-1]["file_id"]


def inline(mime_type, data):
    return {"inlineData": {"mimeType": mime_type, "data": base64.b64encode(data).decode()}}


def record_answers(gemini):
    """The fake's image answers as it returned them, oldest first."""
    answers, answer_image = [], gemini._kind_image

    def image(*args, **kw):
        status, answer = answer_image(*args, **kw)
        answers.append(answer)
        return status, answer

    gemini._kind_image = image
    return answers


def generation_count():
    return Generation.objects.count()


async def nothing_happened(gemini):
    assert gemini.requests == []
    assert await sync_to_async(generation_count)() == 0
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)


async def test_photo_with_a_caption_is_edited_and_charged(bot, tg, gemini):
    sent = tg.push_photo(ALICE, picture("orange"), caption="make it a watercolour")

    [generation] = await settled(1)
    [photo] = tg.calls_of("sendPhoto")

    [asked] = gemini.requests
    assert asked.body["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "make it a watercolour"}, inline("image/jpeg", stored(tg, largest(sent)))],
        }
    ]
    assert (generation.status, generation.kind, generation.reference_count) == ("delivered", "edit", 1)
    assert generation.references == [largest(sent)]
    assert photo.params["reply_parameters"]["message_id"] == sent["message"]["message_id"]
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


@pytest.mark.parametrize(
    "fmt, file_name, declared, detected",
    [
        ("PNG", "sketch.png", "image/png", "image/png"),
        ("WEBP", "sketch.webp", "image/webp", "image/webp"),
        ("JPEG", "sketch.png", "image/png", "image/jpeg"),  # mislabelled: Gemini is told what it really is
    ],
    ids=["png", "webp", "jpeg-labelled-png"],
)
async def test_image_sent_as_a_file_is_used_as_it_was_sent(bot, tg, gemini, fmt, file_name, declared, detected):
    data = picture("teal", fmt)
    tg.push_document(ALICE, data, file_name=file_name, mime_type=declared, caption="add a rainbow")

    [generation] = await settled(1)

    [asked] = gemini.requests
    assert asked.prompt == "add a rainbow"
    assert asked.images == [(detected, data)]  # the file's own bytes, not a recompressed photo
    assert (generation.status, generation.kind, generation.reference_count) == ("delivered", "edit", 1)
    assert len(tg.calls_of("sendPhoto")) == 1
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


@pytest.mark.parametrize(
    "data, file_name, mime_type",
    [
        (PDF, "brief.pdf", "application/pdf"),
        (b"a cat on a sofa\n", "prompt.txt", "text/plain"),
        (picture("red", "GIF"), "wave.gif", "image/gif"),
    ],
    ids=["pdf", "text", "gif"],
)
async def test_file_that_is_not_a_usable_image_is_refused_up_front(bot, tg, gemini, data, file_name, mime_type):
    tg.push_document(ALICE, data, file_name=file_name, mime_type=mime_type, caption="turn this into a poster")

    [reply] = await tg.wait_for_call("sendMessage")

    assert NOT_AN_IMAGE in reply.params["text"]
    await nothing_happened(gemini)


async def test_file_claiming_to_be_a_png_but_unreadable_fails_without_charge(bot, tg, gemini):
    tg.push_document(ALICE, b"\x89PNG\r\n\x1a\nthis is not really a picture", mime_type="image/png", caption="fix it")

    [generation] = await settled(1)
    await tg.wait_for(lambda t: "Nothing was charged" in texts_in(t, ALICE)[-1], what="the failure message")

    [edit] = tg.calls_of("editMessageText")
    assert NOT_AN_IMAGE in edit.params["text"] and "isn't one I can read" in edit.params["text"]
    assert edit.params["message_id"] == generation.status_message_id  # the status message became the failure
    assert not any("Creating your image" in text for text in texts_in(tg, ALICE))
    assert (generation.status, generation.error_code) == ("failed", "input_not_image")
    assert gemini.requests == [] and tg.calls_of("sendPhoto") == []
    assert await sync_to_async(usage_of)(ALICE) == (0, 0)


async def test_photo_without_a_caption_asks_for_one(bot, tg, gemini):
    tg.push_photo(ALICE, picture("navy"))

    [reply] = await tg.wait_for_call("sendMessage")

    assert NEEDS_CAPTION in reply.params["text"]
    await nothing_happened(gemini)


async def test_album_with_the_caption_on_its_second_photo_is_one_request_with_all_photos(bot, tg, gemini):
    parts = [
        tg.push_photo(ALICE, picture(color), caption=caption, media_group_id="album-1")
        for color, caption in [("red", None), ("green", "put all three in one frame"), ("blue", None)]
    ]

    [generation] = await settled(1)
    await asyncio.sleep(0.5)  # longer than ALBUM_WAIT_SECONDS: no second job follows

    [asked] = gemini.requests
    assert asked.prompt == "put all three in one frame"
    assert asked.images == [("image/jpeg", stored(tg, largest(part))) for part in parts]
    assert generation.references == [largest(part) for part in parts]
    assert (generation.kind, generation.reference_count, generation.status) == ("edit", 3, "delivered")
    [photo] = tg.calls_of("sendPhoto")
    assert photo.params["reply_parameters"]["message_id"] == parts[1]["message"]["message_id"]
    assert await sync_to_async(generation_count)() == 1
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


async def test_album_without_a_caption_gets_one_hint(bot, tg, gemini):
    for color in ("red", "green", "blue"):
        tg.push_photo(ALICE, picture(color), media_group_id="album-2")

    [reply] = await tg.wait_for_call("sendMessage")
    await asyncio.sleep(0.5)

    assert NEEDS_CAPTION in reply.params["text"]
    assert len(tg.calls_of("sendMessage")) == 1
    await nothing_happened(gemini)


async def test_description_in_reply_to_an_earlier_photo_edits_that_photo(bot, tg, gemini):
    sent = tg.push_photo(ALICE, picture("purple"))
    await tg.wait_for_call("sendMessage")  # the caption hint
    tg.push_text(ALICE, "give it a golden frame", reply_to_message_id=sent["message"]["message_id"])

    [generation] = await settled(1)

    [asked] = gemini.requests
    assert asked.prompt == "give it a golden frame"
    assert asked.images == [("image/jpeg", stored(tg, largest(sent)))]
    assert (generation.kind, generation.reference_count, generation.parent_id) == ("edit", 1, None)
    assert generation.status == "delivered"


async def test_reply_to_a_result_refines_it_in_a_second_turn(bot, tg, gemini):
    answers = record_answers(gemini)
    tg.push_text(ALICE, "a lighthouse on a cliff")
    [first] = await settled(1)
    [result] = [m for m in tg.chat(ALICE) if m["from"]["is_bot"] and "photo" in m]
    assert result["message_id"] == first.result_message_id

    tg.push_text(ALICE, "now at sunset", reply_to_message_id=result["message_id"])
    [_, second] = await settled(2)

    said, returned = answers[0]["candidates"][0]["content"]["parts"]
    with first.original.open("rb") as original:
        kept = original.read()
    assert base64.b64decode(returned["inlineData"]["data"]) == kept
    assert gemini.requests[1].body["contents"] == [  # the whole earlier turn, as the model gave it
        {"role": "user", "parts": [{"text": "a lighthouse on a cliff"}]},
        {
            "role": "model",
            "parts": [said, inline("image/png", kept) | {"thoughtSignature": returned["thoughtSignature"]}],
        },
        {"role": "user", "parts": [{"text": "now at sunset"}]},
    ]
    assert (second.kind, second.parent_id, second.status) == ("refine", first.pk, "delivered")
    assert (second.references, second.reference_count) == ([], 0)
    assert await sync_to_async(usage_of)(ALICE) == (2, 0)


async def test_inline_options_set_the_size_and_ratio_and_show_in_the_caption(bot, tg, gemini):
    tg.push_text(ALICE, "a harbour at night --ar 16:9 --1k")

    [generation] = await settled(1)
    [photo] = tg.calls_of("sendPhoto")

    [asked] = gemini.requests
    assert asked.prompt == "a harbour at night"
    assert asked.body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}
    assert photo.params["caption"] == "<i>a harbour at night</i>\n1K · 16:9"
    assert (generation.prompt, generation.resolution, generation.aspect_ratio) == ("a harbour at night", "1K", "16:9")


async def test_unknown_aspect_ratio_is_refused_with_the_choices(bot, tg, gemini):
    tg.push_text(ALICE, "a harbour at night --ar 7:3")

    [reply] = await tg.wait_for_call("sendMessage")

    assert "7:3 isn't an aspect ratio I can make" in reply.params["text"]
    assert "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9" in reply.params["text"]
    await nothing_happened(gemini)


async def test_reply_to_the_original_file_of_a_result_refines_it_too(bot, tg, gemini):
    gemini.enqueue("image", width=2600, height=2600)  # longer than Telegram shows: the file follows the photo
    tg.push_text(ALICE, "a lighthouse on a cliff")
    [first] = await settled(1)
    [original] = [m for m in tg.chat(ALICE) if m["from"]["is_bot"] and "document" in m]

    tg.push_text(ALICE, "now at sunset", reply_to_message_id=original["message_id"])
    [_, second] = await settled(2)

    assert (second.kind, second.parent_id) == ("refine", first.pk)
    assert [content["role"] for content in gemini.requests[1].body["contents"]] == ["user", "model", "user"]


async def test_description_in_reply_to_a_pdf_gets_the_clear_message(bot, tg, gemini):
    sent = tg.push_document(ALICE, PDF, file_name="brief.pdf", mime_type="application/pdf")
    await tg.wait_for_call("sendMessage")
    tg.push_text(ALICE, "make this a poster", reply_to_message_id=sent["message"]["message_id"])

    [_, reply] = await tg.wait_for_call("sendMessage", count=2)

    assert NOT_AN_IMAGE in reply.params["text"]
    await asyncio.sleep(0.3)
    await nothing_happened(gemini)


async def test_an_edited_photo_keeps_its_shape_unless_the_prompt_asks_for_another(bot, tg, gemini):
    tg.push_photo(ALICE, picture("green", size=(320, 180)), caption="add a rainbow")
    await settled(1)
    tg.push_photo(ALICE, picture("green", size=(320, 180)), caption="add a moon --ar 1:1")
    await settled(2)
    ratios = [r.body["generationConfig"]["imageConfig"]["aspectRatio"] for r in gemini.requests]
    assert ratios == ["16:9", "1:1"]


async def test_a_decompression_bomb_is_refused_from_its_header_without_charge(bot, tg, gemini):
    bomb = png_bomb(13000, 13000)  # 160 KB that would decode to 169 megapixels
    tg.push_document(ALICE, bomb, file_name="bomb.png", mime_type="image/png", caption="make it colourful")

    [generation] = await settled(1)

    await tg.wait_for(lambda t: "too many pixels" in texts_in(t, ALICE)[-1], what="the refusal")
    assert "Nothing was charged" in texts_in(tg, ALICE)[-1]
    assert (generation.status, generation.error_code) == ("failed", "input_too_many_pixels")
    assert gemini.requests == [] and await sync_to_async(usage_of)(ALICE) == (0, 0)
