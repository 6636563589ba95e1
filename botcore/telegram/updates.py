"""What every update goes through before a handler sees it: parsed without trusting it, taken once,
on a database connection that works."""

import json
import logging
from contextlib import suppress
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone
from telegram import Chat, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ExtBot

from botcore import connections
from botcore.models import ProcessedUpdate

from . import texts

log = logging.getLogger(__name__)

LOGGED_CHARS = 300
# (bot id, update id) -> whether the update was new when its poll recorded it; the gate takes it out.
_polled: dict[tuple[int, int], bool] = {}
# Telegram re-sends an unconfirmed update for up to a day; after that its id can be forgotten.
REMEMBERED = timedelta(days=1)


def parse(data, bot):
    """An Update from Telegram's JSON, or None when not even its id can be read (see `_read`)."""
    return _read(data, bot)[0]


def _read(data, bot):
    """(the Update, whether its content was readable).

    A malformed update must not stop the bot: polling would fetch it again forever, and a webhook
    that fails makes Telegram re-send it. One whose id is readable but whose content isn't is logged
    (shortened) and becomes an empty Update, so polling still confirms it and moves on.
    """
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        # polling confirms updates by id + 1: an id that isn't a number is unreadable
        log.warning("unreadable update skipped (no update_id): %s", _shortened(data))
        return None, False
    try:
        return Update.de_json(data, bot), True
    except Exception as exc:  # whatever a broken relay or a newer API version sends
        log.warning("unreadable update skipped (%s: %s): %s", type(exc).__name__, exc, _shortened(data))
        return Update(update_id), False


def _shortened(data):
    try:
        text = json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(data)
    return text if len(text) <= LOGGED_CHARS else text[:LOGGED_CHARS] + "…"


class Bot(ExtBot):
    """python-telegram-bot's bot, reading getUpdates answers one update at a time (see `_read`):
    PTB parses the whole answer at once, so one bad update would fail every poll.

    A poll's updates are recorded as taken in one statement (`take`), not one each: the gate then only
    looks up what the poll found (`_polled`). A webhook's update is recorded by the gate itself.
    """

    async def _post(self, endpoint, data=None, **kwargs):
        result = await super()._post(endpoint, data, **kwargs)
        if endpoint != "getUpdates" or not isinstance(result, list):
            return result
        kept = []
        for item in result:
            # PTB parses what we keep again (~65 µs an update: nothing next to one image).
            update, readable = _read(item, self)
            if update is not None:
                kept.append(item if readable else {"update_id": update.update_id})
        ids = [item["update_id"] for item in kept]
        if ids:
            try:
                new = await sync_to_async(take)(self.id, ids)
            except Exception:  # the database is away: the gate tries each update itself, and says so
                log.warning("updates %s..%s not recorded as a batch", ids[0], ids[-1], exc_info=True)
            else:
                _polled.update(((self.id, update_id), update_id in new) for update_id in ids)
        return kept


async def gate(update, context):
    """Group -1, before every handler: a usable connection, each update once, and nothing paid for
    by an edit, by a message without a sender or by ids that aren't Telegram's."""
    try:
        answer = await _refusal(update, context.bot)
    except Exception:  # e.g. the database is away: no handler could serve this update either
        log.exception("update %s could not be checked; skipped", update.update_id)
        answer = texts.INTERNAL
    if answer is None:
        return
    message = update.effective_message
    if answer and message is not None and message.chat.type == ChatType.PRIVATE:
        lang = update.effective_user.language_code if update.effective_user else ""
        with suppress(TelegramError):  # an answer we can't send is no reason to serve the update
            await message.reply_html(texts.say(lang, answer), do_quote=True, allow_sending_without_reply=True)
    raise ApplicationHandlerStop


async def _refusal(update, bot):
    """None to let the update through; else what to answer ("" for nothing)."""
    if not _well_typed(update):
        log.warning("update %s with ids that aren't Telegram's skipped", update.update_id)
        return ""
    new = _polled.pop((bot.id, update.update_id), None)
    if new is None:
        new = await sync_to_async(first_time)(bot.id, update.update_id)
    if not new:
        log.info("update %s arrived again; ignored", update.update_id)
        return ""
    if update.edited_message is not None:  # a live location's moves are edits too: those get no answer
        edited = update.edited_message
        return texts.EDIT_IGNORED if edited.text or edited.caption else ""
    if update.effective_user is None and (update.effective_message is not None or update.callback_query is not None):
        return texts.NO_SENDER
    return None


def _well_typed(update):
    """Whether the ids the handlers use are 64-bit integers, as Telegram's are (PTB doesn't check)."""
    message = update.effective_message
    if message is not None and not isinstance(message.chat, Chat):
        return False
    ids = [
        update.effective_user.id if update.effective_user else 0,
        message.chat.id if message else 0,
        message.message_id if message else 0,
    ]
    return all(isinstance(i, int) and not isinstance(i, bool) and abs(i) < 2**63 for i in ids)


def first_time(bot_id, update_id):
    """Record the bot's `update_id` as taken; False when it was taken before (here or elsewhere).

    The first query of each update: on a connection that works (one trip to the ORM's thread)."""
    return update_id in take(bot_id, [update_id])


def take(bot_id, update_ids):
    """Record these update ids of the bot as taken, in one statement; the set of those taken now (the
    others were taken before, here or elsewhere)."""
    connections.make_usable()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = ", ".join(["(%s, %s, %s)"] * len(update_ids))
    table = connection.ops.quote_name(ProcessedUpdate._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bot_id, update_id, received_at) VALUES {rows}"
            " ON CONFLICT (bot_id, update_id) DO NOTHING RETURNING update_id",
            [value for update_id in update_ids for value in (bot_id, update_id, now)],
        )
        return {update_id for (update_id,) in cursor.fetchall()}


def forget_old():
    ProcessedUpdate.objects.filter(received_at__lt=timezone.now() - REMEMBERED).delete()
