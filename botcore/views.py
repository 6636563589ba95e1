"""Telegram's webhook: the same Application and handlers as polling, fed by HTTP POSTs.

Serve it from an ASGI server (`uvicorn nanobot_site.asgi:application`): the bot lives in the
server's event loop, started by the first update, and jobs run there as background tasks.
"""

import asyncio
import json
import logging

from django.conf import settings
from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
    JsonResponse,
)
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from telegram.error import InvalidToken

from . import health
from .telegram import application as bot_application
from .telegram import updates

log = logging.getLogger(__name__)

_running = None
_starting = None


async def running_application():
    global _running, _starting
    if _running is None:
        _starting = _starting or asyncio.Lock()
        async with _starting:
            if _running is None:
                application = bot_application.build_application()
                await bot_application.start(application)
                _running = application
    return _running


async def stop_application():
    global _running
    if _running is not None:
        await bot_application.stop(_running)
        _running = None


@csrf_exempt
@require_POST
async def webhook(request):
    secret = settings.TELEGRAM_WEBHOOK_SECRET
    if not secret:
        return HttpResponseNotFound()
    if not constant_time_compare(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), secret):
        return HttpResponseForbidden()
    try:
        data = json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest()
    try:
        application = await running_application()
    except InvalidToken:  # PTB's message quotes the token: never logged
        log.error("the bot token was rejected; the webhook can't serve updates")
        return HttpResponse(status=503)
    # An update we can't read is answered 200 all the same: an error would make Telegram send it again.
    update = updates.parse(data, application.bot)
    if update is not None:
        # Queued, not processed here: Telegram gets its 200 at once and the bot handles updates concurrently.
        await application.update_queue.put(update)
    return HttpResponse()


@require_GET
def healthz(request):
    """200 when the database, the cache and the broker (if any) answer; 503 naming those that don't."""
    report = health.checks()
    return JsonResponse(
        {"status": "ok" if health.is_healthy(report) else "down", "checks": report},
        status=200 if health.is_healthy(report) else 503,
        headers={"Cache-Control": "no-store"},
    )
