"""Whether this installation can work: its database, its cache and, when jobs go through Celery, its
broker. One function answers; `/healthz` serves it to load balancers and orchestrators."""

import logging
from collections.abc import Callable

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from . import connections

log = logging.getLogger(__name__)

# A probe waits this long for each service: an orchestrator's own timeout is usually a few seconds.
TIMEOUT_SECONDS = 2.0
NOT_CONFIGURED = "not configured"


def checks() -> dict[str, str]:
    """Each service this process depends on: "ok", "down" or "not configured" (a broker with none set).

    Why a service is down goes to the log, not into the answer: a probe is anonymous."""
    return {"database": _check(_database), "cache": _check(_cache), "broker": _check(_broker)}


def is_healthy(report: dict[str, str]) -> bool:
    return "down" not in report.values()


def _check(probe: Callable[[], str | None]) -> str:
    try:
        return probe() or "ok"
    except Exception as exc:
        log.warning("health check: %s is down: %s", probe.__name__.strip("_"), exc)
        return "down"


def _database() -> None:
    connections.make_usable()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    # Our Redis cache carries on without its server (nanobot_site/cache.py), so ask the server itself.
    client = getattr(cache, "_cache", None)
    if client is not None and hasattr(client, "get_client"):
        client.get_client(write=True).ping()


def _broker() -> str | None:
    if not settings.CELERY_BROKER_URL:  # jobs run in the bot's own process
        return NOT_CONFIGURED
    with current_app.connection_for_write(settings.CELERY_BROKER_URL) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT_SECONDS)
    return None
