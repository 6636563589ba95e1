"""End to end: the real bot polls the fake Bot API and calls the fake Gemini API."""

from decimal import Decimal
from io import BytesIO

from asgiref.sync import sync_to_async
from PIL import Image

from accounts.models import QuotaUsage, TelegramUser, Tier
from tests.conftest import settled

ALICE = 501


def usage_of(telegram_id):
    usage = QuotaUsage.objects.filter(user__telegram_id=telegram_id).first()
    return (usage.used, usage.reserved) if usage else (0, 0)


def texts_in(tg, chat_id):
    return [m.get("text") or m.get("caption") or "" for m in tg.chat(chat_id)]


def image_size(data):
    with Image.open(BytesIO(data)) as image:
        return image.size


async def test_prompt_is_answered_with_a_photo_charged_and_logged(bot, tg, gemini):
    tg.push_text(ALICE, "a red fox reading a <book>")

    [generation] = await settled(1)
    [photo] = tg.calls_of("sendPhoto")

    assert generation.status == "delivered"
    assert generation.cost_usd == Decimal("0.1345")  # from its usage: 1,120 image tokens at $120/M, a few words
    assert generation.file_id == tg.chat(ALICE)[-1]["photo"][-1]["file_id"]
    assert generation.upstream_latency_ms is not None and generation.total_latency_ms >= generation.upstream_latency_ms
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)
    assert image_size(photo.files["photo"].data) == (2048, 2048)
    assert photo.params["caption"].startswith("<i>a red fox reading a &lt;book&gt;</i>")
    [asked] = gemini.requests
    assert asked.prompt == "a red fox reading a <book>"
    assert asked.body["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "2K"}
    assert any(c.params.get("action") == "upload_photo" for c in tg.calls_of("sendChatAction"))
    await tg.wait_for(lambda t: not any("Creating your image" in text for text in texts_in(t, ALICE)))


async def test_start_registers_the_user_and_shows_their_quota(bot, tg):
    tg.push_text(ALICE, "/start", first_name="Alice")
    [reply] = await tg.wait_for_call("sendMessage")
    assert "Alice" in reply.params["text"] and "5 of 5 images left today" in reply.params["text"]
    user = await TelegramUser.objects.select_related("tier").aget(telegram_id=ALICE)
    assert user.tier.name == "free"


async def test_hd_is_refused_on_a_tier_without_4k(bot, tg, gemini):
    tg.push_text(ALICE, "/hd a castle")
    [reply] = await tg.wait_for_call("sendMessage")
    assert "4K images aren't included in your plan" in reply.params["text"]
    assert gemini.requests == []


async def test_hd_sends_a_photo_and_the_full_resolution_original(bot, tg, gemini):
    premium = await Tier.objects.aget(name="premium")
    await TelegramUser.objects.acreate(telegram_id=ALICE, username="alice", tier=premium)
    tg.push_text(ALICE, "/hd a castle in the clouds")

    [generation] = await settled(1)
    [document] = tg.calls_of("sendDocument")

    assert generation.status == "delivered" and generation.resolution == "4K"
    assert generation.cost_usd == Decimal("0.2401")  # 2,000 image tokens at $120/M, a few words
    assert image_size(document.files["document"].data) == (4096, 4096)
    assert generation.document_file_id


async def test_exhausted_quota_is_refused_before_any_paid_call(bot, tg, gemini):
    tier = await Tier.objects.acreate(name="tiny", daily_limit=1)
    await TelegramUser.objects.acreate(telegram_id=ALICE, tier=tier)
    tg.push_text(ALICE, "first picture")
    await settled(1)
    tg.push_text(ALICE, "second picture")
    await tg.wait_for(lambda t: any("used all 1 images" in text for text in texts_in(t, ALICE)))
    assert len(gemini.requests) == 1
    assert await sync_to_async(usage_of)(ALICE) == (1, 0)


async def test_ten_users_at_once_are_served_concurrently(bot, tg, gemini):
    gemini.latency = 1.0
    for user_id in range(700, 710):
        tg.push_text(user_id, f"portrait number {user_id}")

    done = await settled(10, timeout=20)

    assert [g.status for g in done] == ["delivered"] * 10
    assert gemini.max_in_flight == 10  # all ten were upstream at the same time, none waited for another
    assert len(tg.calls_of("sendPhoto")) == 10


async def test_user_writing_in_chinese_is_answered_in_traditional_chinese(bot, tg):
    tg.push_text(ALICE, "/quota", language_code="zh-hant")
    [reply] = await tg.wait_for_call("sendMessage")
    assert "今天還剩 5 / 5 張" in reply.params["text"]


async def test_user_whose_telegram_is_in_mainland_chinese_is_answered_in_simplified_chinese(bot, tg):
    tg.push_text(ALICE, "/start", first_name="Alice", language_code="zh-CN")
    [welcome] = await tg.wait_for_call("sendMessage")
    tg.push_text(ALICE, "/hd a castle", language_code="zh-CN")
    [_, refusal] = await tg.wait_for_call("sendMessage", count=2)

    assert welcome.params["text"].startswith("Alice 你好！我用 Nano Banana Pro 把文字变成图片。")
    assert "今天还剩 5 / 5 张" in welcome.params["text"]
    assert refusal.params["text"] == "你的方案不包含 4K 图片，最高可用 2K。"


async def test_user_whose_telegram_is_in_taiwanese_chinese_is_still_answered_in_traditional_chinese(bot, tg):
    tg.push_text(ALICE, "/hd a castle", language_code="zh-TW")
    [refusal] = await tg.wait_for_call("sendMessage")
    assert refusal.params["text"] == "你的方案不包含 4K 圖片，最高可用 2K。"
