"""Credit packs for Telegram Stars, Telegram's side: /buy and its invoices, the checkout, crediting a
payment, /balance, /paysupport and /terms, refunds, and the sweep through the bot's Star transactions.

The decisions (what is on sale, whether a checkout may go ahead, crediting exactly once) are
accounts/payments.py's; here they meet the Bot API.
"""

import logging
from contextlib import suppress
from html import escape

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, TransactionPartnerUser
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, TelegramError

from accounts import credits, quota
from accounts import payments as sales
from accounts.models import CreditPack, LedgerEntry, Payment, TelegramUser
from accounts.staff import StaffError
from botcore import generations

from . import jobs, texts
from .handlers import identity

log = logging.getLogger(__name__)

PACK_PREFIX = "b"
# getStarTransactions lists the bot's transactions oldest first; the sweep goes on from those it has seen.
SEEN_KEY = "payments:star-transactions-seen"
PAGE = 100  # the most getStarTransactions gives at once
LATEST_PAYMENTS = 5  # listed by /paysupport


async def buy_command(update, context):
    lang = identity(update).language_code
    packs = await sync_to_async(sales.on_sale)()
    if not packs:
        await update.effective_message.reply_html(texts.say(lang, texts.NOTHING_ON_SALE))
        return
    buttons = [
        [
            InlineKeyboardButton(
                texts.say(lang, texts.PACK_BUTTON, name=pack.name, images=pack.images, stars=pack.stars),
                callback_data=f"{PACK_PREFIX}:{pack.pk}",
            )
        ]
        for pack in packs
    ]
    await update.effective_message.reply_html(
        texts.say(lang, texts.BUY_MENU), reply_markup=InlineKeyboardMarkup(buttons)
    )


async def pack_pressed(update, context):
    """A pack's button under /buy: its invoice, as the pack is sold now."""
    query = update.callback_query
    lang = identity(update).language_code
    await query.answer()
    number = (query.data or "").partition(":")[2]
    pack = await sync_to_async(sales.offer)(int(number)) if number.isascii() and number.isdigit() else None
    if pack is None:
        await query.message.reply_html(texts.say(lang, texts.PACK_GONE))
        return
    try:
        await context.bot.send_invoice(
            chat_id=query.message.chat_id,
            title=pack.name,
            description=invoice_description(lang, pack),
            payload=sales.Offer.of(pack).payload,
            currency=sales.CURRENCY,
            prices=[LabeledPrice(texts.say(lang, texts.INVOICE_PRICE, images=pack.images), pack.stars)],
        )
    except TelegramError as exc:
        log.error("invoice for pack %s not sent: %s", pack.pk, exc)
        await query.message.reply_html(texts.say(lang, texts.INTERNAL))


def invoice_description(lang: str, pack: CreditPack) -> str:
    parts = [texts.say(lang, texts.INVOICE_DESCRIPTION, images=pack.images)]
    if pack.tier and pack.tier_days:
        parts.append(texts.say(lang, texts.INVOICE_UPGRADE, tier=pack.tier.name, days=pack.tier_days))
    if settings.CREDIT_EXPIRY_DAYS:
        parts.append(texts.say(lang, texts.INVOICE_EXPIRY, days=settings.CREDIT_EXPIRY_DAYS))
    return " ".join(parts)[:255]


async def pre_checkout(update, context):
    """Telegram asks before it takes the Stars; it cancels the checkout unless answered within 10 s."""
    query = update.pre_checkout_query
    lang = query.from_user.language_code or ""
    try:
        reason = await sync_to_async(sales.checkout_refusal)(
            telegram_id=query.from_user.id,
            payload=query.invoice_payload,
            currency=query.currency,
            total=query.total_amount,
        )
    except Exception:  # the database is away: no, rather than a silent timeout
        log.exception("checkout %s could not be checked", query.id)
        reason = "error"
    if reason is None:
        await query.answer(ok=True)
    else:
        log.info("checkout %s refused: %s", query.id, reason)
        await query.answer(ok=False, error_message=texts.say(lang, texts.CHECKOUT_REFUSALS[reason]))


async def successful_payment(update, context):
    """Telegram took the Stars: credit the pack once, however often this is reported."""
    paid = update.effective_message.successful_payment
    who = identity(update)
    payment, new = await sync_to_async(_credit)(who, paid.telegram_payment_charge_id, paid.invoice_payload, paid)
    if new:
        await update.effective_message.reply_html(await sync_to_async(thanks)(payment))
    else:
        log.info("payment %s was credited before; not again", payment.charge_id)


def _credit(who, charge_id, payload, paid):
    return sales.credit(user=who.touch(), charge_id=charge_id, payload=payload, stars=paid.total_amount)


def thanks(payment: Payment) -> str:
    payment.user.refresh_from_db(fields=["credits", "language_code"])
    lang = payment.user.language_code
    text = texts.say(lang, texts.PAID, images=payment.images, credits=payment.user.credits)
    if payment.tier_until:
        until = texts.local_time(payment.tier_until)
        text += "\n" + texts.say(lang, texts.PAID_UPGRADE, tier=payment.tier, until=until)
    return text


async def balance_command(update, context):
    who = identity(update)
    await update.effective_message.reply_html(await sync_to_async(balance)(who))


def balance(who: generations.Identity) -> str:
    """The answer to /balance: free images left today, credits and when the first of them expire, the plan."""
    user = who.touch()
    if credits.expire_due(user):  # the chore may not have come round yet
        user.refresh_from_db(fields=["credits"])
    lang = who.language_code
    remaining = quota.remaining(user)
    lines = [
        texts.say(
            lang,
            texts.BALANCE,
            quota=texts.quota_summary(lang, remaining, user.tier.daily_limit),
            credits=user.credits,
        )
    ]
    expiring = [lot for lot in credits.lots(user) if lot.expires_at is not None]
    if expiring:
        first = expiring[0]
        lines.append(texts.say(lang, texts.BALANCE_EXPIRING, count=first.left, date=texts.local_time(first.expires_at)))
    held = user.ledger.filter(kind=LedgerEntry.Kind.SPEND, state=LedgerEntry.State.HELD).count()
    if held:
        lines.append(texts.say(lang, texts.BALANCE_HELD, count=held))
    if user.tier_until:
        lines.append(
            texts.say(lang, texts.BALANCE_PLAN_UNTIL, tier=user.tier.name, until=texts.local_time(user.tier_until))
        )
    else:
        lines.append(texts.say(lang, texts.BALANCE_PLAN, tier=user.tier.name))
    if sales.selling():
        lines.append(texts.say(lang, texts.BUY_HINT))
    return "\n".join(lines)


async def paysupport_command(update, context):
    """Telegram requires it of bots that sell: how to get help with a payment. With a message after the
    command, and no contact set, the message goes to the admins."""
    who = identity(update)
    message = update.effective_message
    _, _, question = (message.text or "").partition(" ")
    if question.strip() and not settings.PAYMENT_SUPPORT_CONTACT and settings.ADMIN_TELEGRAM_IDS:
        user = update.effective_user
        name = f"@{user.username}" if user.username else user.full_name
        text = texts.say("en", texts.ADMIN_PAYSUPPORT, user=name, telegram_id=user.id, text=question.strip()[:3000])
        text += "\n" + await sync_to_async(latest_payments)(who, "en")
        await jobs.tell_admins(context.bot, text)
        await message.reply_html(texts.say(who.language_code, texts.PAYSUPPORT_SENT))
        return
    if settings.PAYMENT_SUPPORT_CONTACT:
        how = texts.say(who.language_code, texts.PAYSUPPORT_CONTACT, contact=settings.PAYMENT_SUPPORT_CONTACT)
    else:
        how = texts.say(who.language_code, texts.PAYSUPPORT_HERE)
    await message.reply_html(f"{how}\n\n{await sync_to_async(latest_payments)(who, who.language_code)}")


def latest_payments(who: generations.Identity, lang: str) -> str:
    payments = list(Payment.objects.filter(user__telegram_id=who.telegram_id)[:LATEST_PAYMENTS])
    if not payments:
        return texts.say(lang, texts.PAYSUPPORT_NO_PAYMENTS)
    lines = [texts.say(lang, texts.PAYSUPPORT_PAYMENTS)]
    for payment in payments:
        refunded = (
            f" ({texts.say(lang, texts.PAYSUPPORT_REFUNDED)})" if payment.status == Payment.Status.REFUNDED else ""
        )
        when = texts.local_time(payment.paid_at)
        lines.append(f"• {when} · {escape(payment.pack_name)} · {payment.stars} ⭐{refunded}")
        lines.append(f"  <code>{escape(payment.charge_id)}</code>")
    return "\n".join(lines)


async def terms_command(update, context):
    lang = identity(update).language_code
    if settings.CREDIT_EXPIRY_DAYS:
        text = texts.say(lang, texts.TERMS, days=settings.CREDIT_EXPIRY_DAYS)
    else:
        text = texts.say(lang, texts.TERMS_NO_EXPIRY)
    if settings.TERMS_URL:
        text += "\n\n" + texts.say(lang, texts.TERMS_MORE, url=settings.TERMS_URL)
    await update.effective_message.reply_html(text)


def refund(*, actor, payment: Payment) -> int:
    """Give a payment's Stars back through Telegram, then take its unused credits back (see
    accounts.payments.refunded): how many. StaffError, saying why, when Telegram won't."""
    async_to_sync(_refund_stars)(payment.user.telegram_id, payment.charge_id)
    return sales.refunded(actor=actor, payment=payment)


async def _refund_stars(user_id: int, charge_id: str) -> None:
    try:
        async with jobs.standalone_bot() as bot:
            await bot.refund_star_payment(user_id, charge_id)
    except BadRequest as exc:
        if "charge_already_refunded" in exc.message.lower():  # refunded before (a retry after a crash): done
            return
        raise StaffError(_("Telegram refused the refund: %(reason)s") % {"reason": exc.message}) from None
    except InvalidToken:  # PTB's message quotes the token: never shown
        raise StaffError(_("Telegram rejected the bot's token (TELEGRAM_BOT_TOKEN).")) from None
    except TelegramError as exc:
        log.warning("refund of %s not done: %s", charge_id, exc)
        raise StaffError(_("Telegram could not be reached; nothing was refunded. Try again later.")) from None


def anything_sold() -> bool:
    """Whether the sweep has anything to look for: a bot that never sold asks Telegram nothing."""
    return sales.selling() or Payment.objects.exists()


async def sweep(bot, due=True) -> int:
    """Go through the bot's Star transactions not seen yet: a payment with no Payment row (its update was
    lost: the process died, or the update was taken and never served) is credited now and its user told;
    a refund made elsewhere (or recorded by no one, the process died after Telegram refunded) is recorded.
    How many payments were credited."""
    seen = cache.get(SEEN_KEY, 0)
    credited = 0
    while True:
        page = (await bot.get_star_transactions(offset=seen, limit=PAGE)).transactions
        for star_transaction in page:
            credited += await _reconcile(bot, star_transaction)
        seen += len(page)
        cache.set(SEEN_KEY, seen, None)
        if len(page) < PAGE:
            return credited


async def _reconcile(bot, star_transaction) -> int:
    source, receiver = star_transaction.source, star_transaction.receiver
    if isinstance(source, TransactionPartnerUser) and source.invoice_payload:
        who = generations.Identity(
            telegram_id=source.user.id,
            username=source.user.username or "",
            first_name=source.user.first_name or "",
            language_code=source.user.language_code or "",
        )
        payment, new = await sync_to_async(_credit_swept)(who, star_transaction)
        if not new:
            return 0
        log.warning("payment %s was credited by the sweep: its update was lost", payment.charge_id)
        with suppress(TelegramError):
            await bot.send_message(who.telegram_id, await sync_to_async(thanks)(payment), parse_mode=ParseMode.HTML)
        return 1
    if isinstance(receiver, TransactionPartnerUser):
        await sync_to_async(_refunded_elsewhere)(star_transaction.id)
    return 0


def _credit_swept(who, star_transaction):
    # A transaction's user carries no language: a known user is left as they are.
    user = TelegramUser.objects.filter(telegram_id=who.telegram_id).first() or who.touch()
    return sales.credit(
        user=user,
        charge_id=star_transaction.id,
        payload=star_transaction.source.invoice_payload,
        stars=star_transaction.amount,
        paid_at=star_transaction.date,
    )


def _refunded_elsewhere(charge_id: str) -> None:
    payment = Payment.objects.filter(charge_id=charge_id, status=Payment.Status.PAID).first()
    if payment is not None:  # refunded() marks it once, whoever else is recording it now
        log.warning("payment %s was refunded outside the dashboard; recorded", charge_id)
        sales.refunded(actor=None, payment=payment)
