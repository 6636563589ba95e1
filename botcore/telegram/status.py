"""A job's status message ("Generating…"): sent beside the job, at the lowest priority of a message,
never in the way of anyone's image.

The job doesn't wait for it to go out. In a burst most status messages would reach their chats only
after the images (Telegram takes 30 messages a second), so the outbound scheduler drops a status still
waiting when its chat hears something newer: the result, or the reason there is none.
"""

import asyncio
import logging
from contextlib import suppress

from telegram import Message, ReplyParameters
from telegram.constants import ChatType, ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import ExtBot

from .outbound import Outbound, Priority

log = logging.getLogger(__name__)

# How long a job waits for its status message before it starts, when the message is on its way: if it is
# out by then, its id is stored with the job, and the sweeper can turn it into an apology should the
# process die. One still waiting for its turn (a burst) is not waited for: the image would wait with it.
GRACE_SECONDS = 0.5


def send(message: Message, text: str) -> "asyncio.Future[Message]":
    """Start sending `text` in answer to `message` (quoting it in groups, as Message.reply_text does), as a
    status message; the future of the sent one."""
    quote = None
    if message.chat.type != ChatType.PRIVATE:
        quote = ReplyParameters(message.message_id, allow_sending_without_reply=True)
    bot = message.get_bot()
    assert isinstance(bot, ExtBot)  # the application's: its limiter reads rate_limit_args
    sent = bot.send_message(
        message.chat_id,
        text,
        parse_mode=ParseMode.HTML,
        reply_parameters=quote,
        message_thread_id=message.message_thread_id if message.is_topic_message else None,
        rate_limit_args=Priority.STATUS,
    )
    return asyncio.ensure_future(sent)


async def id_within(
    bot, chat_id: int, sending: "asyncio.Future[Message]", seconds: float
) -> tuple[int | None, "asyncio.Future | None"]:
    """(the status message's id, None) when it went out within `seconds`; (None, `sending`) while it still
    waits; (None, None) when it won't be sent. Forbidden when the user blocked the bot."""
    await asyncio.sleep(0)  # its call reaches the limiter
    limiter = _limiter(bot)
    if not (limiter and limiter.status_waiting(chat_id)):
        await asyncio.wait({sending}, timeout=seconds)
    if not sending.done():
        return None, sending
    try:
        return sending.result().message_id, None
    except Forbidden:
        raise
    except TelegramError as exc:  # a passing fault, or dropped: the image matters, the status message doesn't
        log.info("status message not sent: %s", exc)
        return None, None


def _limiter(bot) -> Outbound | None:
    limiter = getattr(bot, "rate_limiter", None)
    return limiter if isinstance(limiter, Outbound) else None


_showing: set[asyncio.Task] = set()  # edits on their way: referenced until done


def show(bot, chat_id: int, message_id: int, text: str) -> None:
    """Change a status message's text without waiting: a newer text replaces one still waiting to go
    out, and one still waiting when the chat's image goes out is dropped (outbound.py)."""

    async def edit() -> None:
        with suppress(TelegramError):  # gone, not modified, or dropped: a status message is a courtesy
            await bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML, rate_limit_args=Priority.STATUS
            )

    task = asyncio.ensure_future(edit())
    _showing.add(task)
    task.add_done_callback(_showing.discard)


async def settle(bot, chat_id: int, sending: "asyncio.Future[Message]") -> None:
    """After a job's last word: a status message still waiting is never sent, one that went out
    meanwhile is removed."""
    limiter = _limiter(bot)
    if limiter:
        limiter.withdraw_statuses(chat_id)
    try:
        message = await sending
    except TelegramError:
        return
    with suppress(TelegramError):
        await bot.delete_message(chat_id, message.message_id)
