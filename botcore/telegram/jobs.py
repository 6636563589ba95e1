"""The one generation pipeline: start -> provider -> deliver -> finish, with the user told either way.

It runs as an asyncio task inside the bot, or in a Celery worker (tasks.py); both call
`run_generation`. Quota was reserved when the request was accepted (generations.request);
here it is committed only once the photo reached the user, and released on any failure.
"""

import asyncio
import hashlib
import logging
import time
import unicodedata
from contextlib import asynccontextmanager, suppress

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from telegram.constants import ParseMode
from telegram.error import Forbidden, InvalidToken, TelegramError
from telegram.ext import ExtBot

from botcore import connections, generations, logs, results, spending, upstream
from botcore.errors import ErrorCode
from botcore.models import Generation
from botcore.periodic import repeating
from botcore.providers import ImageRequest, ImageResult, ProviderError, Turn, open_provider

from . import delivery, files, keyboards, outbound, status, stopping, texts
from .transport import bot_request

log = logging.getLogger(__name__)

ADMIN_ALERT_EVERY_SECONDS = 600
BUDGET_ALERT_KEPT_SECONDS = 32 * 24 * 3600  # longer than a month: the period in its key makes it once per period
STATUS_STORE_SECONDS = 1.0
# Instructions to the model for the result buttons; the user's prompt follows them.
VARIATION_PROMPT = "Create a new variation of this image: keep its subject and style, change the composition."
UPSCALE_PROMPT = "Re-render this image at a higher resolution with finer detail. Change nothing else."
# Regenerate and Variation ask for a new image on purpose.
UNCACHED_KINDS = {Generation.Kind.REGENERATE, Generation.Kind.VARIATION}


async def run_generation(batch, *, bot, provider, status_message_id=None, sending_status=None, takeover=False):
    """Make and deliver the images of one request: one Generation, or the several of a /batch.

    The status message is known by its id, or is still being sent (`sending_status`, see status.py).
    `takeover` is for a job its Celery message brought again (the worker running it died): a job
    still leased to a live process is left to it, one whose lease ran out is run here.
    """
    with logs.job(batch[0].pk):
        await _run_generation(batch, bot, provider, status_message_id, sending_status, takeover)


async def _run_generation(batch, bot, provider, status_message_id, sending_status, takeover):
    started = time.monotonic()
    pending = None
    if sending_status is not None:
        try:
            status_message_id, pending = await status.id_within(
                bot, batch[0].chat_id, sending_status, status.GRACE_SECONDS
            )
        except Forbidden as exc:  # the user blocked the bot: no image could reach them either
            await blocked(batch, exc)
            return
        if pending is not None:  # sent later, if at all: stored for the sweeper then
            pending.add_done_callback(lambda sent: _note_sent(batch, sent))
    try:
        await _take_and_run(batch, bot, provider, status_message_id, takeover, started)
    finally:
        if pending is not None:
            await status.settle(bot, batch[0].chat_id, pending)


async def _take_and_run(batch, bot, provider, status_message_id, takeover, started):
    ids = [generation.pk for generation in batch]
    if takeover and (held_until := await sync_to_async(generations.held_elsewhere)(ids)):
        await asyncio.sleep(max(0.0, (held_until - timezone.now()).total_seconds()) + 1)
    taken = [
        generation
        for generation in batch
        if generations.is_mine(generation)
        or await sync_to_async(generations.start)(generation, status_message_id, takeover=takeover)
    ]
    if status_message_id and taken and not taken[0].status_message_id:  # running since its request
        for generation in taken:
            generation.status_message_id = status_message_id
        # Stored at once (not awaited: in a burst the ORM's thread is busy), so the sweeper finds it
        # should this process die.
        generations.note_status_message(ids, status_message_id)
        _store_status_messages_now()
    if not taken:
        await _not_taken(bot, ids, status_message_id)
        return
    try:
        await _run(taken, bot, provider, started)
    except Exception:
        log.exception("generation %s crashed", taken[0].pk)
        await _fail_all(bot, taken, ErrorCode.INTERNAL, "unexpected error")


_storing: set[asyncio.Task] = set()


async def _store_status_messages():
    try:
        await sync_to_async(generations.store_status_messages)()
    except Exception:  # the database is away: the next round writes them
        log.warning("status messages not stored", exc_info=True)


def _store_status_messages_now():
    task = asyncio.ensure_future(_store_status_messages())
    _storing.add(task)
    task.add_done_callback(_storing.discard)


def _note_sent(batch, sent):
    if not sent.cancelled() and sent.exception() is None:
        generations.note_status_message([generation.pk for generation in batch], sent.result().message_id)


async def blocked(batch, exc):
    """Close a job whose user blocked the bot before it started: nothing is paid for, nothing owed."""
    log.info("generation %s not run: %s", batch[0].pk, exc)
    for generation in batch:
        await _close(generation, Generation.Status.FAILED, error_code=ErrorCode.DELIVERY, error_message=str(exc))


async def _not_taken(bot, ids, status_message_id):
    """A job that didn't start here: finished, run by another process, or given up on."""
    rows = await _rows(ids)
    if not rows:
        return
    first = rows[0]
    abandoned = first.lease_until is not None and first.lease_until < timezone.now()
    if first.is_open and abandoned and first.attempts >= generations.MAX_ATTEMPTS:
        log.warning("generation %s killed its runner %d times; given up", first.pk, first.attempts)
        await _fail_all(bot, rows, ErrorCode.INTERRUPTED, "its runners died")
    elif not first.is_open and not first.status_message_id and status_message_id:
        # Expired while queued, before it knew its status message: the sweeper told the user anew.
        log.info("generation %s is not queued any more; skipped", first.pk)
        with suppress(TelegramError):
            await bot.delete_message(first.chat_id, status_message_id)
    else:
        log.info("generation %s is %s, runner %s; not run again here", first.pk, first.status, first.runner)


async def _rows(ids):
    return [g async for g in Generation.objects.select_related("user", "parent").filter(pk__in=ids).order_by("pk")]


async def _run(batch, bot, provider, started):
    first = batch[0]
    try:
        image_request = await _image_request(bot, first)
    except files.InputError as exc:
        log.info("generation %s has an unusable input: %s", first.pk, exc)
        await _fail_all(bot, batch, exc.code, exc.detail or exc.code)
        return
    key = cache_key(first, image_request)
    if len(batch) == 1 and first.kind not in UNCACHED_KINDS:
        # Not on the ORM's thread: in a burst it is busy with everyone's requests, and this is a cache read.
        cached_id = await asyncio.to_thread(generations.cached_id, key)
        earlier = await sync_to_async(generations.cached)(cached_id) if cached_id else None
        if earlier is not None:
            await _deliver_from_cache(bot, first, earlier, key, started)
            return
    if (over := await sync_to_async(spending.reached)(batch)) is not None:
        detail = f"the {over.limit.period}'s budget of ${over.limit.amount} is reached"
        for generation in batch:
            await _close(generation, Generation.Status.REFUSED, error_code=ErrorCode.BUDGET, error_message=detail)
        await tell_failure(bot, first, ErrorCode.BUDGET)
        await notify_budget(bot, over)
        return
    calls = [_in_turn(bot, first, provider, image_request, told=index == 0) for index in range(len(batch))]
    with stopping.stoppable(first.user.telegram_id) as stop:
        async with delivery.chat_action(bot, first.chat_id):
            answers, stopped = await stopping.unless_stopped(stop, calls)
        if stopped:
            stop.stopped.set_result(await _close_stopped(batch, answers))
    if stopped:
        await _remove_status(bot, first)
        return
    made, errors = [], []
    for generation, answer in zip(batch, answers, strict=True):
        if isinstance(answer, ProviderError):
            log.warning("generation %s failed upstream: %s", generation.pk, answer)
            await _close(generation, Generation.Status.FAILED, error_code=answer.code, error_message=answer.detail)
            errors.append(answer)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            made.append((generation, answer))
    # Also those of a provider the chain passed over: the user got an image, but only an operator can fix it.
    seen = errors + [error for _, result in made for error in result.passed_over]
    if any(error.code == ErrorCode.OPERATOR for error in seen):
        await notify_admins(bot, next(error for error in seen if error.code == ErrorCode.OPERATOR))
    delivered = False
    try:
        if made:
            delivered = await _deliver(bot, made, key, started)
    finally:
        for _, result in made:
            result.close()
    if errors and (delivered or not made):  # a failed delivery was told already, as a failure of all
        await _tell_failures(bot, first, errors[0].code, failed=len(errors), total=len(batch))
    if delivered:
        await _remove_status(bot, first)


async def _close_stopped(batch, answers):
    """Close a stopped job's generations, releasing their quota; a call already answered is still
    logged with its cost. How many were closed here."""
    closed = 0
    for generation, answer in zip(batch, answers, strict=True):
        paid = {}
        if isinstance(answer, ImageResult):
            paid = _paid(generation, answer)
            answer.close()
        fields = {"error_code": ErrorCode.CANCELLED, "error_message": "stopped by the user", **paid}
        closed += bool(await _close(generation, Generation.Status.FAILED, **fields))
    return closed


async def _in_turn(bot, first, provider, image_request, *, told):
    """One image call, when the upstream queue lets it run; the user of the `told` call of a job sees
    their place in the queue meanwhile (in the status message, once it is known)."""
    queue = upstream.for_this_loop()
    lang = first.user.language_code
    shown = False

    async def moved(ahead, seconds):
        nonlocal shown
        if first.status_message_id:
            status.show(bot, first.chat_id, first.status_message_id, texts.queued(lang, ahead, seconds))
            shown = True

    async with queue.turn(moved if told else None, every=settings.QUEUE_UPDATE_SECONDS):
        if shown:  # back to "creating your image"
            working = texts.say(lang, texts.WORKING, resolution=first.resolution, aspect_ratio=first.aspect_ratio)
            status.show(bot, first.chat_id, first.status_message_id, working)
        return await provider.generate(image_request)


async def _image_request(bot, generation):
    """What to ask the provider for this generation: its prompt, with the images it builds on."""
    Kind = Generation.Kind
    source = generation
    while source.kind == Kind.REGENERATE and source.parent_id:  # the request it repeats, however often
        source = await Generation.objects.select_related("parent").aget(pk=source.parent_id)
    references = tuple([await files.download_image(bot, file_id) for file_id in generation.references])
    prompt = source.prompt
    history: tuple[Turn, ...] = ()
    if source.kind == Kind.REFINE and source.parent:
        earlier = source.parent
        result = await files.result_image(bot, earlier)
        history = (Turn(earlier.prompt, (), result, earlier.thought_signature, tuple(earlier.model_turn)),)
    elif source.kind in (Kind.VARIATION, Kind.UPSCALE):
        references = (await files.result_image(bot, source.parent),)
        instruction = VARIATION_PROMPT if source.kind == Kind.VARIATION else UPSCALE_PROMPT
        prompt = f"{instruction}\n\n{source.prompt}"
    return ImageRequest(prompt, generation.resolution, generation.aspect_ratio, references, history)


def cache_key(generation, image_request):
    """The same request, whoever sends it: the prompt after normalisation, the settings, and the
    input images by content."""
    parts = [
        settings.IMAGE_MODEL,
        " ".join(unicodedata.normalize("NFKC", image_request.prompt).casefold().split()),
        image_request.resolution,
        image_request.aspect_ratio,
        *(hashlib.sha256(image.data).hexdigest() for image in image_request.references),
        *(hashlib.sha256(turn.result.data).hexdigest() for turn in image_request.history),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


async def _deliver(bot, made, key, started):
    first, _ = made[0]
    caption = texts.caption(first.prompt, first.resolution, first.aspect_ratio)
    for generation, result in made:
        try:
            # A file write, not a query: kept off the ORM's thread, which a burst keeps busy.
            generation.original = await asyncio.to_thread(results.keep, generation, result.file, result.mime_type)
        except OSError as exc:  # the user still gets the image; only the Original button and the dashboard lose it
            log.warning("result of generation %s not kept: %s", generation.pk, exc)
    try:
        if len(made) == 1:
            sent = [
                await delivery.deliver(
                    bot,
                    first.chat_id,
                    made[0][1].file,
                    caption=caption,
                    reply_to=first.request_message_id,
                    stem=f"nanobot-{first.pk}",
                    reply_markup=keyboards.result(first),
                )
            ]
        else:
            sent = await delivery.deliver_album(
                bot,
                first.chat_id,
                [result.file for _, result in made],
                caption=caption,
                reply_to=first.request_message_id,
                stem=f"nanobot-{first.pk}",
            )
    except (TelegramError, delivery.UnreadableImage) as exc:
        log.warning("generation %s not delivered: %s", first.pk, exc)
        code = ErrorCode.NO_IMAGE if isinstance(exc, delivery.UnreadableImage) else ErrorCode.DELIVERY
        for generation, result in made:
            await _close(
                generation,
                Generation.Status.FAILED,
                error_code=code,
                error_message=str(exc),
                # Kept for the button that sends it later, and for refining it then; purged in time.
                original=generation.original.name if generation.original else "",
                thought_signature=result.thought_signature,
                model_turn=list(result.model_turn),
                **_paid(generation, result),
            )
        kept = [generation for generation, _ in made if generation.original]
        if code == ErrorCode.DELIVERY and kept and not isinstance(exc, Forbidden):  # not lost: offered again
            await tell_failure(bot, first, ErrorCode.UNDELIVERED, reply_markup=keyboards.undelivered(kept))
        else:
            await _tell_failures(bot, first, code, failed=len(made), total=len(made))
        return False
    for (generation, result), message in zip(made, sent, strict=True):
        await _close(
            generation,
            Generation.Status.DELIVERED,
            **_shown_in(message),
            original=generation.original.name if generation.original else "",
            thought_signature=result.thought_signature,
            model_turn=list(result.model_turn),
            cache_key=key,
            total_latency_ms=_ms_since(started),
            **_paid(generation, result),
        )
    if len(made) > 1:
        with suppress(TelegramError):
            await bot.send_message(
                first.chat_id,
                texts.say(first.user.language_code, texts.BATCH_ACTIONS, count=len(made)),
                parse_mode=ParseMode.HTML,
                reply_markup=keyboards.batch([generation for generation, _ in made]),
            )
    return True


async def _deliver_from_cache(bot, generation, earlier, key, started):
    try:
        sent = await delivery.resend(
            bot,
            generation.chat_id,
            earlier,
            caption=texts.caption(generation.prompt, generation.resolution, generation.aspect_ratio),
            reply_to=generation.request_message_id,
            reply_markup=keyboards.result(generation),
        )
    except TelegramError as exc:
        log.warning("cached result %s not resent: %s", earlier.pk, exc)
        await _fail_all(bot, [generation], ErrorCode.DELIVERY, str(exc))
        return
    await _close(
        generation,
        Generation.Status.DELIVERED,
        charge=False,
        cache_hit=True,
        provider="cache",
        model=earlier.model,
        **_shown_in(sent),
        original=earlier.original.name if earlier.original else "",
        thought_signature=earlier.thought_signature,
        model_turn=earlier.model_turn,
        cache_key=key,
        total_latency_ms=_ms_since(started),
    )
    await _remove_status(bot, generation)


def _shown_in(sent):
    """Where a delivered result is, for its Generation row: the buttons and replies find it there."""
    return {
        "file_id": sent.file_id,
        "document_file_id": sent.document_file_id,
        "result_message_id": sent.message_id,
        "document_message_id": sent.document_message_id,
    }


def _paid(generation, result):
    return {
        "provider": result.provider,
        "model": result.model,
        "upstream_latency_ms": result.upstream_ms,
        "cost_usd": generations.price(result.provider, result.model, generation.resolution, result.usage),
    }


async def _close(generation, status, **fields):
    if "error_message" in fields:
        fields["error_message"] = fields["error_message"][:1000]
    return await sync_to_async(generations.finish)(generation, status, **fields)


async def _fail_all(bot, batch, code, detail):
    closed = [
        await _close(generation, Generation.Status.FAILED, error_code=code, error_message=detail)
        for generation in batch
    ]
    if any(closed):  # else they were already finished (delivered, or expired) and the user has heard about it
        await tell_failure(bot, batch[0], code)


async def _tell_failures(bot, first, code, *, failed, total):
    if failed == total:
        await tell_failure(bot, first, code)
        return
    text = texts.say(
        first.user.language_code,
        texts.BATCH_PARTLY_FAILED,
        failed=failed,
        total=total,
        reason=texts.failure_reason(first.user.language_code, code),
    )
    with suppress(TelegramError):
        await bot.send_message(first.chat_id, text, parse_mode=ParseMode.HTML)


async def tell_failure(bot, generation, code, reply_markup=None):
    """Turn the status message into the failure's explanation, or say it anew if that message is gone."""
    text = texts.failure(generation.user.language_code, code)
    try:
        if generation.status_message_id:
            await bot.edit_message_text(
                text,
                chat_id=generation.chat_id,
                message_id=generation.status_message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=reply_markup,
            )
            return
    except Forbidden:  # the user blocked the bot
        return
    except TelegramError as exc:  # the status message is gone, or Telegram didn't answer: say it anew
        log.info("status message of generation %s not edited: %s", generation.pk, exc)
    with suppress(TelegramError):
        await bot.send_message(generation.chat_id, text, parse_mode=ParseMode.HTML, reply_markup=reply_markup)


async def deliver_kept(bot, generation, *, reply_to=None):
    """Send a claimed result that was made but couldn't be delivered (generations.claim_undelivered),
    as its kept original file. False when the file is gone; Telegram's error when it still fails."""
    try:
        message = await delivery.persistently(lambda: delivery.send_original_of(bot, generation, reply_to=reply_to))
    except TelegramError:
        await sync_to_async(generations.unclaim)(generation)
        raise
    if message is None:
        await sync_to_async(generations.unclaim)(generation)
        return False
    await sync_to_async(generations.shown_late)(
        generation, document_file_id=message.document.file_id, document_message_id=message.message_id
    )
    return True


@asynccontextmanager
async def leases_held():
    """While the block runs, renew the leases of the jobs this process runs, and store their status
    messages (within a second, all in one statement)."""

    async def renew():
        try:
            await sync_to_async(generations.renew_leases)()
        except Exception:  # the database is away: the next renewal tries again
            log.warning("job leases not renewed", exc_info=True)

    renewing = repeating(renew, settings.JOB_LEASE_SECONDS / 6)
    try:
        async with renewing, repeating(_store_status_messages, STATUS_STORE_SECONDS):
            yield
    finally:  # what the last jobs noted is written before the process lets its connections go
        await asyncio.gather(*_storing, return_exceptions=True)
        await _store_status_messages()


async def _remove_status(bot, generation):
    if generation.status_message_id:
        with suppress(TelegramError):
            await bot.delete_message(generation.chat_id, generation.status_message_id)


async def notify_budget(bot, over):
    """Tell the operators once per period that a spend limit stops new images."""
    limit = over.limit
    text = texts.say(
        "en",
        texts.ADMIN_BUDGET_ALERT,
        period=limit.period,
        amount=f"${limit.amount:.2f}",
        spent=f"${over.spent:.2f}",
        in_flight=f"${over.in_flight:.2f}",
        setting="DAILY_BUDGET_USD" if limit.period == "day" else "MONTHLY_BUDGET_USD",
    )
    await _tell_admins(bot, text, f"admin-alert:budget:{limit.period}:{limit.first_day}", BUDGET_ALERT_KEPT_SECONDS)


async def notify_admins(bot, error):
    """Tell the operators about a problem only they can fix, at most once per ten minutes."""
    text = texts.say("en", texts.ADMIN_ALERT, detail=error.detail[:300])
    await _tell_admins(bot, text, "admin-alert:provider", ADMIN_ALERT_EVERY_SECONDS)


async def _tell_admins(bot, text, once, seconds):
    """Send `text` to ADMIN_TELEGRAM_IDS unless the alert `once` was sent in the last `seconds`."""
    if not settings.ADMIN_TELEGRAM_IDS or not cache.add(once, 1, seconds):
        return
    await tell_admins(bot, text)


async def tell_admins(bot, text):
    """Send `text` to each of ADMIN_TELEGRAM_IDS; one that can't be reached is skipped."""
    for admin_id in settings.ADMIN_TELEGRAM_IDS:
        with suppress(TelegramError):
            await bot.send_message(admin_id, text, parse_mode=ParseMode.HTML)


def standalone_bot():
    """A Bot for a process that doesn't run the bot's application (a Celery worker), paced like the bot's."""
    return ExtBot(
        settings.TELEGRAM_BOT_TOKEN,
        base_url=settings.TELEGRAM_BASE_URL,
        base_file_url=settings.TELEGRAM_BASE_FILE_URL,
        request=bot_request(),
        rate_limiter=outbound.for_settings(),
    )


async def run_generation_standalone(generation_ids, status_message_id=None):
    """Run one job outside the bot process (a Celery worker), with its own Bot and HTTP clients."""
    bot = standalone_bot()
    await sync_to_async(connections.make_usable)()
    batch = await _rows(generation_ids)
    if not batch:
        log.warning("generations %s do not exist; skipped", generation_ids)
        return
    try:
        await bot.initialize()
    except InvalidToken:  # PTB's message quotes the token: never logged
        log.error("the bot token was rejected; generations %s not run", generation_ids)
        for generation in batch:  # no one can be told: at least the quota goes back at once
            await _close(
                generation, Generation.Status.FAILED, error_code=ErrorCode.OPERATOR, error_message="token rejected"
            )
        return
    async with bot, open_provider() as provider, leases_held():
        await run_generation(batch, bot=bot, provider=provider, status_message_id=status_message_id, takeover=True)


def _ms_since(started):
    return int((time.monotonic() - started) * 1000)
