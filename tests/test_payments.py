"""Buying images with Telegram Stars, end to end against the fake Bot API: /buy, the invoice, the checkout,
the credits, spending them after the day's free images, and what happens when things go wrong."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts import credits
from accounts import payments as sales
from accounts.models import AuditEntry, Ban, CreditPack, LedgerEntry, Payment, TelegramUser, Tier
from accounts.staff import StaffError
from botcore.telegram import payments
from tests.conftest import WEBHOOK_SECRET, WEBHOOK_URL, settled
from tests.test_bot_results import a_result, press

ALICE, ADMIN = 601, 9000
Kind, State = LedgerEntry.Kind, LedgerEntry.State


def texts_in(tg, chat_id):
    return [m.get("text") or "" for m in tg.chat(chat_id)]


async def last_text(tg, chat_id, containing):
    await tg.wait_for(lambda t: any(containing in text for text in texts_in(t, chat_id)), what=repr(containing))
    return next(text for text in reversed(texts_in(tg, chat_id)) if containing in text)


@sync_to_async
def one_free_image_a_day():
    Tier.objects.filter(name="free").update(daily_limit=1)


@sync_to_async
def pack(**fields):
    return CreditPack.objects.create(**{"name": "Starter", "stars": 50, "images": 3, **fields})


@sync_to_async
def credits_of(telegram_id):
    user = TelegramUser.objects.get(telegram_id=telegram_id)
    assert user.credits == credits.in_ledger(user)  # the kept sum is the ledger's
    return user.credits


@sync_to_async
def ledger(telegram_id):
    return [
        (e.kind, e.images, e.state) for e in LedgerEntry.objects.filter(user__telegram_id=telegram_id).order_by("pk")
    ]


async def buy(tg, telegram_id, pack_name="Starter"):
    """/buy, press the pack's button, pay the invoice: the successful payment, or None if refused."""
    tg.push_text(telegram_id, "/buy")
    await tg.wait_for(lambda t: any("reply_markup" in m for m in t.chat(telegram_id)), what="the packs")
    menu = next(m for m in reversed(tg.chat(telegram_id)) if "reply_markup" in m)
    [button] = [row[0] for row in menu["reply_markup"]["inline_keyboard"] if row[0]["text"].startswith(pack_name)]
    tg.push_callback(telegram_id, menu["message_id"], button["callback_data"])
    [invoice] = await tg.wait_for_call("sendInvoice")
    await tg.wait_for(lambda t: any("invoice" in m for m in t.chat(telegram_id)), what="the invoice")
    sent = next(m for m in tg.chat(telegram_id) if "invoice" in m)
    paid = await tg.pay(telegram_id, sent["message_id"])
    if paid is not None:
        await last_text(tg, telegram_id, "Thank you")
    return invoice, paid


async def test_a_bought_pack_pays_for_images_once_the_free_ones_of_the_day_are_gone(bot, tg, gemini):
    await one_free_image_a_day()
    await pack()

    invoice, paid = await buy(tg, ALICE)
    assert invoice.params["currency"] == "XTR" and invoice.params["prices"] == [{"label": "3 images", "amount": 50}]
    assert "provider_token" not in invoice.params  # Stars take none
    assert paid is not None
    assert "3 credits added; you have 3 now" in await last_text(tg, ALICE, "Thank you")

    tg.push_text(ALICE, "a lighthouse at dawn")  # the day's free image
    [first] = await settled(1)
    assert first.status == "delivered" and first.credit_id is None and await credits_of(ALICE) == 3

    tg.push_text(ALICE, "a harbour at night")  # then a credit
    _, second = await settled(2)
    assert second.status == "delivered" and await credits_of(ALICE) == 2
    assert await ledger(ALICE) == [(Kind.PURCHASE, 3, State.DONE), (Kind.SPEND, -1, State.DONE)]

    tg.push_text(ALICE, "/balance")
    balance = await last_text(tg, ALICE, "Credits:")
    assert "0 of 1 images left today" in balance and "Credits: 2" in balance
    assert "2 of them expire on" in balance  # CREDIT_EXPIRY_DAYS after the purchase


async def test_a_payment_reported_twice_is_credited_once(bot, tg, gemini):
    await pack()
    payload = sales.Offer.of(await CreditPack.objects.aget()).payload
    tg.push_successful_payment(ALICE, payload, 50, charge_id="stxTwice")
    await last_text(tg, ALICE, "Thank you")
    tg.push_successful_payment(ALICE, payload, 50, charge_id="stxTwice", record=False)  # a new update, same charge
    tg.push_text(ALICE, "/balance")
    await last_text(tg, ALICE, "Credits:")

    assert await Payment.objects.acount() == 1 and await credits_of(ALICE) == 3
    assert sum("Thank you" in text for text in texts_in(tg, ALICE)) == 1


async def test_the_checkout_is_refused_for_a_pack_taken_off_sale_meanwhile(bot, tg, gemini):
    starter = await pack()
    tg.push_text(ALICE, "/buy")
    await tg.wait_for(lambda t: any("reply_markup" in m for m in t.chat(ALICE)), what="the packs")
    menu = next(m for m in tg.chat(ALICE) if "reply_markup" in m)
    tg.push_callback(ALICE, menu["message_id"], menu["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    await tg.wait_for(lambda t: any("invoice" in m for m in t.chat(ALICE)), what="the invoice")
    await sync_to_async(sales.delete_pack)(actor=None, pack=starter)  # staff remove it before Alice pays

    invoice = next(m for m in tg.chat(ALICE) if "invoice" in m)
    assert await tg.pay(ALICE, invoice["message_id"]) is None
    [answer] = tg.checkout_answers.values()
    assert answer["error_message"].startswith("This pack is no longer sold like this")
    assert await Payment.objects.acount() == 0


async def test_the_checkout_is_refused_for_a_price_that_changed_and_for_a_banned_user(bot, tg, gemini):
    starter = await pack()
    old_payload = sales.Offer.of(starter).payload
    await sync_to_async(sales.save_pack)(actor=None, pack=starter, stars=80)
    query = tg.push_pre_checkout(ALICE, old_payload, 50)["pre_checkout_query"]["id"]
    answer = await tg.wait_for(lambda t: t.checkout_answers.get(query), what="the checkout answer")
    assert answer["ok"] is False

    tg.push_text(ALICE, "/start")
    await last_text(tg, ALICE, "Hi Alice")
    user = await TelegramUser.objects.aget(telegram_id=ALICE)
    await Ban.objects.acreate(user=user, reason="spam")
    await starter.arefresh_from_db()
    query = tg.push_pre_checkout(ALICE, sales.Offer.of(starter).payload, 80)["pre_checkout_query"]["id"]
    answer = await tg.wait_for(lambda t: t.checkout_answers.get(query), what="the checkout answer")
    assert (answer["ok"], answer["error_message"]) == (False, "Your account can't make purchases while it is banned.")


async def test_an_image_that_fails_gives_its_credit_back(bot, tg, gemini):
    await one_free_image_a_day()
    await pack()
    await buy(tg, ALICE)
    tg.push_text(ALICE, "a lighthouse at dawn")
    await settled(1)

    gemini.enqueue("prompt_blocked")
    tg.push_text(ALICE, "a harbour at night")
    _, failed = await settled(2)
    assert failed.status == "failed" and await credits_of(ALICE) == 3
    assert await ledger(ALICE) == [(Kind.PURCHASE, 3, State.DONE), (Kind.SPEND, -1, State.RELEASED)]


async def test_a_batch_uses_the_free_images_left_then_credits_and_is_refused_beyond_them(bot, tg, gemini):
    await one_free_image_a_day()
    await pack(images=2)
    await buy(tg, ALICE)

    tg.push_text(ALICE, "/batch 4 a koi pond")
    assert "You asked for 4 images but have 3 left today" in await last_text(tg, ALICE, "You asked for")

    tg.push_text(ALICE, "/batch 3 a koi pond")
    batch = await settled(3)
    assert [g.status for g in batch] == ["delivered"] * 3
    assert sum(g.credit_id is not None for g in batch) == 2 and await credits_of(ALICE) == 0

    tg.push_text(ALICE, "one more")
    refusal = await last_text(tg, ALICE, "You've used all 1 images")
    assert "Buy more images with /buy." in refusal


async def test_a_result_button_pressed_after_the_free_images_spends_a_credit(bot, tg, gemini):
    await one_free_image_a_day()
    await pack()
    await buy(tg, ALICE)
    _, message, _ = await a_result(tg, user_id=ALICE)

    press(tg, message, "variation", user_id=ALICE)
    _, variation = await settled(2)
    assert (variation.kind, variation.status) == ("variation", "delivered") and variation.credit_id is not None
    assert await credits_of(ALICE) == 2


async def test_a_refund_gives_the_stars_back_and_takes_the_unused_credits(bot, tg, gemini):
    await one_free_image_a_day()
    await pack()
    await buy(tg, ALICE)
    tg.push_text(ALICE, "a lighthouse at dawn")
    await settled(1)
    tg.push_text(ALICE, "a harbour at night")
    await settled(2)  # one free, one credit
    payment = await Payment.objects.select_related("user").aget()

    assert await sync_to_async(payments.refund)(actor=None, payment=payment) == 2
    [refund] = tg.calls_of("refundStarPayment")
    assert refund.params == {"user_id": ALICE, "telegram_payment_charge_id": payment.charge_id}
    await payment.arefresh_from_db()
    assert payment.status == "refunded" and await credits_of(ALICE) == 0
    assert (await ledger(ALICE))[-1] == (Kind.REFUND, -2, State.DONE)
    entry = await AuditEntry.objects.aget(action="payment.refund")
    assert entry.after["credits_taken_back"] == 2


async def test_a_refund_telegram_already_made_counts_as_done(bot, tg, gemini):
    """The process died after Telegram refunded and before the refund was recorded: staff press again."""
    await pack()
    await buy(tg, ALICE)
    payment = await Payment.objects.select_related("user").aget()
    tg.star_transactions.append({**tg.star_transactions[0], "receiver": tg.star_transactions[0]["source"]})
    del tg.star_transactions[-1]["source"]

    assert await sync_to_async(payments.refund)(actor=None, payment=payment) == 3
    await payment.arefresh_from_db()
    assert payment.status == "refunded" and tg.calls_of("refundStarPayment")[0].status == 400


async def test_telegram_refusing_a_refund_changes_nothing(bot, tg, gemini):
    await pack()
    await buy(tg, ALICE)
    payment = await Payment.objects.select_related("user").aget()
    tg.fail_next("refundStarPayment", 400, "Bad Request: BALANCE_TOO_LOW")

    with pytest.raises(StaffError, match="(?i)Telegram refused the refund: balance_too_low"):
        await sync_to_async(payments.refund)(actor=None, payment=payment)
    await payment.arefresh_from_db()
    assert payment.status == "paid" and await credits_of(ALICE) == 3


async def test_the_sweep_credits_a_payment_whose_update_was_lost_and_records_a_refund_made_elsewhere(bot, tg, gemini):
    starter = await pack()
    payload = sales.Offer.of(starter).payload
    await buy(tg, ALICE)
    tg.record_star_payment(ALICE, payload, 50, "stxLost")  # Telegram took the Stars; the bot never heard

    assert await payments.sweep(bot.bot) == 1
    assert await credits_of(ALICE) == 6
    assert (await TelegramUser.objects.aget(telegram_id=ALICE)).language_code == "en"  # not the transaction's none
    assert "you have 6 now" in await last_text(tg, ALICE, "you have 6")
    assert await payments.sweep(bot.bot) == 0  # nothing new: nothing credited twice

    first = await Payment.objects.exclude(charge_id="stxLost").aget()
    receiver = {
        "type": "user",
        "transaction_type": "invoice_payment",
        "user": {"id": ALICE, "is_bot": False, "first_name": "A"},
    }
    tg.star_transactions.append({"id": first.charge_id, "amount": 50, "date": 1, "receiver": receiver})
    await payments.sweep(bot.bot)
    await first.arefresh_from_db()
    assert first.status == "refunded" and await credits_of(ALICE) == 3


async def test_a_pack_with_a_tier_upgrade_lifts_the_plan_for_its_days_then_ends(bot, tg, gemini):
    premium = await Tier.objects.aget(name="premium")
    await pack(tier=premium, tier_days=30)
    await buy(tg, ALICE)
    assert "Your plan is premium until" in await last_text(tg, ALICE, "Thank you")
    user = await TelegramUser.objects.select_related("tier").aget(telegram_id=ALICE)
    assert user.tier.name == "premium" and user.tier_until > timezone.now() + timedelta(days=29)

    await sync_to_async(sales.end_upgrades)(timezone.now() + timedelta(days=31))
    user = await TelegramUser.objects.select_related("tier").aget(telegram_id=ALICE)
    assert (user.tier.name, user.tier_until) == ("free", None)


@pytest.mark.bot_settings(PAYMENT_SUPPORT_CONTACT="@nanobot_help", TERMS_URL="https://example.com/terms")
async def test_paysupport_and_terms_answer_as_telegram_requires(bot, tg, gemini):
    await pack()
    await buy(tg, ALICE)
    payment = await Payment.objects.aget()
    tg.push_text(ALICE, "/paysupport")
    support = await last_text(tg, ALICE, "Questions about a payment?")
    assert "@nanobot_help" in support and payment.charge_id in support and "Starter · 50 ⭐" in support
    tg.push_text(ALICE, "/terms")
    terms = await last_text(tg, ALICE, "Terms")
    assert "expire 365 days after purchase" in terms and "https://example.com/terms" in terms


@pytest.mark.bot_settings(ADMIN_TELEGRAM_IDS=[ADMIN])
async def test_a_paysupport_message_reaches_the_admins_escaped(bot, tg, gemini):
    tg.push_text(ALICE, "/paysupport I paid but <b>nothing</b> came")
    await last_text(tg, ALICE, "your message was passed on")
    [forwarded] = [c for c in tg.calls_of("sendMessage") if c.params["chat_id"] == ADMIN]
    assert "I paid but &lt;b&gt;nothing&lt;/b&gt; came" in forwarded.params["text"]


async def test_nothing_on_sale_says_so(bot, tg, gemini):
    await pack(is_active=False)
    tg.push_text(ALICE, "/buy")
    assert await last_text(tg, ALICE, "Nothing is for sale right now.")


async def test_a_checkout_through_the_webhook_is_answered_by_the_same_handlers(webhook, async_client, tg, gemini):
    starter = await pack()
    update = tg.push_pre_checkout(ALICE, sales.Offer.of(starter).payload, 50)
    secret = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}

    response = await async_client.post(WEBHOOK_URL, update, content_type="application/json", headers=secret)

    assert response.status_code == 200
    query = update["pre_checkout_query"]["id"]
    assert (await tg.wait_for(lambda t: t.checkout_answers.get(query), what="the answer"))["ok"] is True
