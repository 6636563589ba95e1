"""Telegram's webhook: the same Application and handlers as polling, fed by HTTP POSTs.

Serve it from an ASGI server (`uvicorn nanobot_site.asgi:application`): the bot lives in the
server's event loop, started by the first update, and jobs run there as background tasks.
"""

import asyncio
import json
import logging

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from telegram.error import InvalidToken

from . import health, metrics
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


async def take_update(secret_given, body):
    """What the webhook answers Telegram (an HTTP status) for one POST: the update queued for the bot."""
    secret = settings.TELEGRAM_WEBHOOK_SECRET
    if not secret:
        return 404
    if not constant_time_compare(secret_given, secret):
        return 403
    try:
        data = json.loads(body)
    except ValueError:
        return 400
    try:
        application = await running_application()
    except InvalidToken:  # PTB's message quotes the token: never logged
        log.error("the bot token was rejected; the webhook can't serve updates")
        return 503
    # An update we can't read is answered 200 all the same: an error would make Telegram send it again.
    update = updates.parse(data, application.bot)
    if update is not None:
        # Queued, not processed here: Telegram gets its 200 at once and the bot handles updates concurrently.
        await application.update_queue.put(update)
    return 200


@csrf_exempt
@require_POST
async def webhook(request):
    status = await take_update(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), request.body)
    return HttpResponse(status=status)


def webhook_first(django_application):
    """The ASGI application to serve: Telegram's POSTs to the webhook go to `take_update` directly,
    everything else to Django.

    Django's middleware would cost an update more than the bot's own work: each one's sync half runs on
    a thread, two trips per middleware per request, on a thread made for each request (through Django,
    a web worker spent 15 ms of CPU per update and took 107 a second; without it 0.7-2.8 ms and 500 a
    second with room to spare: docs/benchmarks.md, "Webhook ingest"). None of it serves the webhook: no
    session, user, CSRF token, language or page headers; Telegram's secret token is its authentication.
    """
    path = reverse("telegram-webhook")

    async def application(scope, receive, send):
        if scope["type"] != "http" or scope["path"] != path or scope["method"] != "POST":
            return await django_application(scope, receive, send)
        body, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.append(message.get("body", b""))
            size += len(body[-1])
            if size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:  # Django's limit on a request body
                status = 413
                break
            if not message.get("more_body", False):
                secret = next((v for k, v in scope["headers"] if k == b"x-telegram-bot-api-secret-token"), b"")
                status = await take_update(secret.decode("latin-1"), b"".join(body))
                break
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    return application


@require_GET
def scrape(request):
    """The figures for Prometheus (botcore/metrics.py), to a scraper sending `Authorization: Bearer
    <METRICS_TOKEN>`; without a token configured there is no such page."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponseNotFound()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not constant_time_compare(given.strip(), token):
        return HttpResponse(status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body, content_type = metrics.page(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})


@require_GET
def healthz(request):
    """200 when the database, the cache and the broker (if any) answer; 503 naming those that don't."""
    report = health.checks()
    return JsonResponse(
        {"status": "ok" if health.is_healthy(report) else "down", "checks": report},
        status=200 if health.is_healthy(report) else 503,
        headers={"Cache-Control": "no-store"},
    )
