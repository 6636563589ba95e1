"""What Prometheus scrapes at GET /metrics (botcore/views.py): the bot's figures, read from the shared
database when scraped, and the events of each process, kept by prometheus-client.

Two kinds, because they live in different places:

- **The bot's** (`BotFigures`): generations today by status and provider, spend today and this month, the
  queue, the providers' breakers. They are facts of the database every process shares (and of the shared
  breaker store), the same whichever process reads them, so a scrape of any one web process gives the whole
  bot's, however many machines run it, with nothing to set up (the embedded default too). A few indexed
  queries: the open jobs, today's rows, and the month's closed days from their DaySummary rows.
- **Each process's events**: how long each generation took (from its request to its end, by provider and
  outcome; its `_count` is the rate of outcomes), how long the image API took, and the calls Telegram
  answered 429. They happen wherever a job runs or a message is sent: the bot, each web worker, each Celery
  worker. With PROMETHEUS_MULTIPROC_DIR set, every process writes its own to a file there, and a scrape sums
  the files of every process of the machine, dead ones included, so counts never go back (prometheus-client's
  multiprocess mode): one scrape target per machine. Without it, a scrape shows the serving process's own.

Labels are bounded sets (status, provider name, Bot API method, breaker state): no user, prompt or secret.
"""

import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import BooleanField, Count, ExpressionWrapper, Min, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from accounts import days

from . import summaries
from .models import Generation

log = logging.getLogger(__name__)

# Containers that share one directory each number their processes from 1, so a pid alone would put two
# processes in one file: the host name (a container's id) keeps them apart. No "_": prometheus-client
# splits file names on it.
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())


def _process_name() -> str:
    return f"{_HOST}-{os.getpid()}"


# Set before any metric below makes its first value. prometheus-client chose from the environment when
# imported, where an empty PROMETHEUS_MULTIPROC_DIR (a blank line in .env) counts as set: the setting decides.
values.ValueClass = values.MultiProcessValue(_process_name) if settings.METRICS_DIR else values.MutexValue
# Multiprocess mode has no `_created` series: the same page either way.
disable_created_metrics()

# This process's own figures when there is no directory; in multiprocess mode their values go to its files.
_own = CollectorRegistry()
# The dashboard's latency buckets (summaries.LATENCY_BUCKETS_MS), so both tell the same percentiles.
LATENCY_BUCKETS = tuple(edge / 1000 for edge in summaries.LATENCY_BUCKETS_MS)

generation_seconds = Histogram(
    "nanobot_generation_seconds",
    "Generations ended in this process: seconds from the request to the end (queue included), by provider and status",
    ["provider", "status"],
    buckets=LATENCY_BUCKETS,
    registry=_own,
)
upstream_seconds = Histogram(
    "nanobot_upstream_seconds",
    "Image API calls that answered with an image: seconds the provider took",
    ["provider"],
    buckets=LATENCY_BUCKETS,
    registry=_own,
)
telegram_429s = Counter(
    "nanobot_telegram_429",
    "Bot API calls Telegram answered 429 Too Many Requests, by method",
    ["method"],
    registry=_own,
)

BREAKER_STATES = ("closed", "open", "half-open")  # those of providers.breakers
_METHOD = re.compile(r"[A-Za-z]{1,40}")  # a Bot API method's name, e.g. sendPhoto


def generation_ended(generation: Generation, status: str, fields: Mapping[str, Any]) -> None:
    """Record a generation that `generations.finish` closed with `status` and `fields`."""
    provider = _provider(fields.get("provider", generation.provider))
    waited = (timezone.now() - generation.created_at).total_seconds()
    generation_seconds.labels(provider=provider, status=_status(status)).observe(max(0.0, waited))
    if fields.get("upstream_latency_ms") is not None:
        upstream_seconds.labels(provider=provider).observe(fields["upstream_latency_ms"] / 1000)


def telegram_429(method: str) -> None:
    """Record a Bot API call (`method`, e.g. "sendPhoto") that Telegram answered 429."""
    telegram_429s.labels(method=method if _METHOD.fullmatch(method) else "other").inc()


BreakerReader = Callable[[], Iterable[tuple[str, str]]]
_breakers: BreakerReader | None = None


def read_breakers(reader: BreakerReader | None) -> None:
    """Where a scrape finds the providers' breakers: `reader()` gives (provider, state) pairs, state one of
    BREAKER_STATES. Read when scraped, since a breaker goes from open to half-open by the clock alone."""
    global _breakers
    _breakers = reader


def _provider(name: str) -> str:
    if not name:
        return "none"  # refused, or failed before any provider answered
    return name if name in settings.PROVIDER_KEYS or name == "cache" else "other"


def _status(status: str) -> str:
    return status if status in Generation.Status.values else "other"


class BotFigures:
    """The bot's figures, from the shared database at each scrape."""

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        try:
            figures = list(self._from_database())
        except DatabaseError as exc:  # the processes' own figures are still worth serving; /healthz names the cause
            log.warning("metrics: the database figures could not be read: %s", exc)
            figures = []
        yield from figures
        yield from _breaker_states()
        yield GaugeMetricFamily(
            "nanobot_metrics_database_seconds",
            "Seconds this scrape spent reading the database",
            value=time.perf_counter() - started,
        )

    def _from_database(self) -> Iterator[Metric]:
        now = timezone.now()
        today = days.today(now)
        yield from _queue(now)
        # The month's closed days from their summaries, the open ones (today, and yesterday until its
        # last job ends) from their rows.
        closed, open_from = summaries.closed(today.replace(day=1), today)
        month_spend = closed.aggregate(spend=Sum("spend", default=Decimal(0)))["spend"]
        generations = GaugeMetricFamily(
            "nanobot_generations_today",
            "Generations asked for today (in TIME_ZONE), by status and provider",
            labels=["status", "provider"],
        )
        spend_today = GaugeMetricFamily(
            "nanobot_spend_today_usd", "USD spent on image calls today, by provider", labels=["provider"]
        )
        counts: dict[tuple[str, str], int] = {}
        spent: dict[str, Decimal] = {}
        is_today = ExpressionWrapper(Q(created_at__gte=days.start_of(today)), output_field=BooleanField())
        grouped = (
            summaries.created_on(open_from, today)
            .annotate(is_today=is_today)
            .values("status", "provider", "is_today")
            .annotate(images=Count("pk"), spend=Sum("cost_usd", default=Decimal(0)))
            .order_by()
        )
        for row in grouped:
            month_spend += row["spend"]
            if row["is_today"]:
                status, provider = _status(row["status"]), _provider(row["provider"])
                counts[status, provider] = counts.get((status, provider), 0) + row["images"]
                spent[provider] = spent.get(provider, Decimal(0)) + row["spend"]
        for (status, provider), images in sorted(counts.items()):
            generations.add_metric([status, provider], images)
        for provider, spend in sorted(spent.items()):
            spend_today.add_metric([provider], float(spend))
        yield generations
        yield spend_today
        yield GaugeMetricFamily(
            "nanobot_spend_month_usd", "USD spent on image calls this month (in TIME_ZONE)", value=float(month_spend)
        )
        if settings.MONTHLY_BUDGET_USD:
            yield GaugeMetricFamily(
                "nanobot_budget_month_usd", "MONTHLY_BUDGET_USD", value=float(settings.MONTHLY_BUDGET_USD)
            )


def _queue(now: datetime) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "nanobot_queue_depth", "Generations waiting for a runner (queued) or being made (running)", labels=["status"]
    )
    open_jobs = {
        row["status"]: row
        for row in Generation.objects.filter(status__in=Generation.OPEN)
        .values("status")
        .annotate(jobs=Count("pk"), oldest=Min("created_at"))
        .order_by()
    }
    for status in Generation.OPEN:
        depth.add_metric([status], open_jobs[status]["jobs"] if status in open_jobs else 0)
    yield depth
    oldest = open_jobs.get(Generation.Status.QUEUED, {}).get("oldest")
    yield GaugeMetricFamily(
        "nanobot_oldest_queued_seconds",
        "Seconds the oldest queued generation has waited (0: none waits)",
        value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
    )


def _breaker_states() -> Iterator[Metric]:
    if _breakers is None:
        return
    states = GaugeMetricFamily(
        "nanobot_provider_breaker_state",
        "1 for the state each provider's circuit breaker is in (open: skipped; half-open: one trial call)",
        labels=["provider", "state"],
    )
    try:
        read = sorted(_breakers())
    except Exception as exc:  # the breaker store is away: the rest of the page is still worth serving
        log.warning("metrics: the breaker states could not be read: %s", exc)
        return
    for provider, state in read:
        for name in BREAKER_STATES:
            states.add_metric([_provider(provider), name], 1 if state == name else 0)
    yield states


class _Page:
    """The collectors of one scrape, in the order they are shown."""

    def __init__(self, *sources: Collector) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def page(accept: str = "") -> tuple[bytes, str]:
    """The scrape (body, content type), in the format Prometheus asked for (`accept`: its Accept header):
    the processes' figures (this machine's, or this process's) and the bot's."""
    encode, content_type = choose_encoder(accept)
    processes = MultiProcessCollector(None, settings.METRICS_DIR) if settings.METRICS_DIR else _own
    return encode(_Page(processes, BotFigures())), content_type
