"""Is the bot working right now? The overview's status panel: the processes that serve the bot (by their
heartbeats), the jobs waiting and running, the providers' circuit breakers, and the spend against the
budget. Each check is ok, warn, bad or info, shown with a word and an icon as well as a colour, and one
that is not ok says what a person should do. Worked out here, once: a page or the API only shows it."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Min, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from accounts import days
from botcore import heartbeats, providers
from botcore.heartbeats import Process
from botcore.models import Generation, Heartbeat

from . import budget
from .templatetags.figures import percent, usd, when

log = logging.getLogger(__name__)

OK, WARN, BAD, INFO = "ok", "warn", "bad", "info"
# Queued this long, a job waits for more than its turn: the runners can't keep up, or none is taking jobs.
SLOW_QUEUE = timedelta(minutes=5)
BUDGET_WARNING = Decimal("0.8")
PROVIDER_NAMES = {"gemini": "Gemini", "openai": "OpenAI"}


@dataclass(frozen=True)
class Check:
    name: str  # what is checked: "Bot"
    level: str  # OK, WARN, BAD or INFO
    summary: str  # how it stands
    advice: str = ""  # what to do about it, when it is not ok
    details: list[str] = field(default_factory=list)  # e.g. each process, with its last heartbeat
    link: str = ""  # where to look further
    link_text: str = ""

    @property
    def word(self) -> str:
        return {
            OK: _("OK"),
            WARN: _("Attention"),
            BAD: _("Action needed"),
            INFO: pgettext("a status that needs no action", "Note"),
        }[self.level]

    @property
    def icon(self) -> str:
        return {OK: "✓", WARN: "!", BAD: "✗", INFO: "i"}[self.level]


def checks(spent_today: Decimal, spent_month: Decimal, now: datetime | None = None) -> list[Check]:
    """The status panel's checks, in the order it reads: processes, jobs, providers, spend.
    `spent_today` and `spent_month`: USD, as the overview has them already."""
    now = now or timezone.now()
    processes = heartbeats.processes(now)
    found = [_bot(processes)]
    if settings.CELERY_BROKER_URL:
        found += [_workers(processes), _beat(processes)]
    # Without a broker the bot runs the jobs itself; with one, the workers do.
    runner = Heartbeat.Kind.WORKER if settings.CELERY_BROKER_URL else Heartbeat.Kind.BOT
    found.append(_jobs(now, any(p.alive for p in processes if p.kind == runner)))
    found += _providers()
    found += _spend(spent_today, spent_month, days.today(now))
    return found


def _of_kind(processes: list[Process], kind: str) -> tuple[list[Process], list[Process], list[str]]:
    """The live and the silent processes of `kind`, and a line on each."""
    alive = [p for p in processes if p.kind == kind and p.alive]
    silent = [p for p in processes if p.kind == kind and not p.alive]
    lines = [
        (
            _("%(name)s: started %(started)s, last heartbeat %(beat)s")
            if p.alive
            else _("%(name)s: started %(started)s, silent since %(beat)s")
        )
        % {"name": p.name, "started": when(p.started_at), "beat": when(p.beat_at)}
        for p in alive + silent
    ]
    return alive, silent, lines


def _running(alive: list[Process]) -> str:
    count = len(alive)
    return ngettext(
        "%(count)d running, last heartbeat %(beat)s.", "%(count)d running, last heartbeat %(beat)s.", count
    ) % {"count": count, "beat": when(max(p.beat_at for p in alive))}


# What each kind of process is called in "not heard from" sentences, whole, so that each translates as one.
NOT_HEARD_SINCE = {
    Heartbeat.Kind.BOT: gettext_lazy("No bot has been heard from since %(beat)s."),
    Heartbeat.Kind.WORKER: gettext_lazy("No Celery worker has been heard from since %(beat)s."),
    Heartbeat.Kind.BEAT: gettext_lazy("Beat has not been heard from since %(beat)s."),
}
NOT_HEARD_TODAY = {
    Heartbeat.Kind.BOT: gettext_lazy("No bot has been heard from in the last day."),
    Heartbeat.Kind.WORKER: gettext_lazy("No Celery worker has been heard from in the last day."),
    Heartbeat.Kind.BEAT: gettext_lazy("Beat has not been heard from in the last day."),
}


def _last_heard(silent: list[Process], kind: str) -> str:
    if silent:
        return str(NOT_HEARD_SINCE[kind]) % {"beat": when(max(p.beat_at for p in silent))}
    return str(NOT_HEARD_TODAY[kind])


def _bot(processes: list[Process]) -> Check:
    alive, silent, lines = _of_kind(processes, Heartbeat.Kind.BOT)
    if alive:
        return Check(_("Bot"), OK, _running(alive), details=lines)
    if settings.TELEGRAM_WEBHOOK_SECRET:
        start = _("Start the web server (uvicorn nanobot_site.asgi:application): the bot runs in it.")
    else:
        start = _("Start it with python manage.py runbot.")
    advice = [_last_heard(silent, Heartbeat.Kind.BOT), start]
    if not settings.CELERY_BROKER_URL:
        advice.append(_("Jobs run inside the bot, so no image is made meanwhile."))
    return Check(_("Bot"), BAD, _("Not running."), " ".join(advice), lines)


def _workers(processes: list[Process]) -> Check:
    alive, silent, lines = _of_kind(processes, Heartbeat.Kind.WORKER)
    if alive:
        return Check(_("Celery workers"), OK, _running(alive), details=lines)
    advice = [
        _("Jobs queue up until a worker takes them."),
        _last_heard(silent, Heartbeat.Kind.WORKER),
        _("Start one with celery -A nanobot_site worker."),
    ]
    return Check(_("Celery workers"), BAD, _("Not running."), " ".join(advice), lines)


def _beat(processes: list[Process]) -> Check:
    alive, silent, lines = _of_kind(processes, Heartbeat.Kind.BEAT)
    if len(alive) == 1:
        return Check(_("Celery beat"), OK, _running(alive), details=lines)
    if alive:
        advice = _("Run exactly one beat: with %(count)d, every housekeeping chore is done %(count)d times.") % {
            "count": len(alive)
        }
        return Check(_("Celery beat"), WARN, _running(alive), advice, lines)
    advice = [
        _("Housekeeping has stopped: jobs whose worker died are never answered."),
        _last_heard(silent, Heartbeat.Kind.BEAT),
        _("Start it with celery -A nanobot_site beat."),
    ]
    return Check(_("Celery beat"), BAD, _("Not running."), " ".join(advice), lines)


def _jobs(now: datetime, runner_alive: bool) -> Check:
    """Queued and running generations. A running job's runner renews its lease every few seconds, so one
    whose lease ran out, or that no live bot or worker could be running, is stuck rather than running."""
    Status = Generation.Status
    jobs = Generation.objects.filter(status__in=Generation.OPEN).aggregate(
        queued=Count("pk", filter=Q(status=Status.QUEUED)),
        running=Count("pk", filter=Q(status=Status.RUNNING)),
        leased=Count("pk", filter=Q(status=Status.RUNNING, lease_until__gte=now)),
        oldest=Min("created_at", filter=Q(status=Status.QUEUED)),
    )
    running = jobs["leased"] if runner_alive else 0
    stuck = jobs["running"] - running
    counts = {"queued": jobs["queued"], "running": running, "stuck": stuck}
    if stuck:
        summary = _("%(queued)d queued, %(running)d running, %(stuck)d stuck.") % counts
    else:
        summary = _("%(queued)d queued, %(running)d running.") % counts
    running_jobs = {"link": reverse("dashboard:generations") + "?status=running", "link_text": _("Running jobs")}
    if stuck:
        advice = ngettext(
            "%(count)d job is marked running, but no live bot or worker is making it. The housekeeping fails it "
            "and gives its quota back once a bot (or, with Celery, beat) runs.",
            "%(count)d jobs are marked running, but no live bot or worker is making them. The housekeeping fails "
            "them and gives their quota back once a bot (or, with Celery, beat) runs.",
            stuck,
        ) % {"count": stuck}
        return Check(_("Jobs"), BAD, summary, advice, **running_jobs)
    if jobs["oldest"] and jobs["oldest"] < now - SLOW_QUEUE:
        advice = _(
            "The oldest queued job has waited since %(since)s: jobs come faster than they are taken. Check "
            "that a bot or worker runs; add workers or raise UPSTREAM_CONCURRENCY."
        ) % {"since": when(jobs["oldest"])}
        queued_jobs = {"link": reverse("dashboard:generations") + "?status=queued", "link_text": _("Queued jobs")}
        return Check(_("Jobs"), WARN, summary, advice, **queued_jobs)
    return Check(_("Jobs"), OK, summary)


def _providers() -> list[Check]:
    try:
        states = providers.breaker_states()
    except Exception as exc:  # the breaker store is away: the rest of the panel still stands
        log.warning("status: the breaker states could not be read: %s", exc)
        states = dict.fromkeys(settings.IMAGE_PROVIDERS)
    usable = [name for name, state in states.items() if state != "open"]
    found = []
    for name, state in states.items():
        shown = PROVIDER_NAMES.get(name, name)
        if state == "closed":
            found.append(Check(shown, OK, _("Answering: its circuit breaker is closed.")))
        elif state == "half-open":
            advice = _("%(provider)s failed repeatedly; a trial request is finding out whether it is back.") % {
                "provider": shown
            }
            found.append(Check(shown, WARN, _("Being tried again."), advice))
        elif state == "open" and usable:
            advice = _(
                "%(provider)s is failing: requests go to the fallback (%(fallback)s) until it answers again. "
                "Check its status page, and our key's quota and billing."
            ) % {"provider": shown, "fallback": ", ".join(PROVIDER_NAMES.get(n, n) for n in usable)}
            found.append(Check(shown, WARN, _("Failing: skipped."), advice))
        elif state == "open":
            advice = _(
                "%(provider)s is failing and there is no fallback: image requests fail until it answers again. "
                "Check its status page, and our key's quota and billing."
            ) % {"provider": shown}
            found.append(Check(shown, BAD, _("Failing: skipped."), advice))
        else:
            note = _(
                "Without a shared cache (CACHE_URL set to a Redis), the circuit breaker lives in the bot's own "
                "process: set one to see it here."
            )
            found.append(Check(shown, INFO, _("Not known here."), note))
    return found


def _spend(spent_today: Decimal, spent_month: Decimal, today) -> list[Check]:
    monthly, daily = budget.monthly(), budget.daily_share(today)
    if not monthly and not settings.DAILY_BUDGET_USD:
        note = _("No budget is set: set MONTHLY_BUDGET_USD or DAILY_BUDGET_USD to cap what image calls may cost.")
        return [Check(_("Spend this month"), INFO, usd(spent_month) + ".", note)]
    costs = {"link": reverse("dashboard:costs"), "link_text": _("Costs")}
    found = []
    if monthly:
        month_share = spent_month / monthly
        summary = _("%(spent)s of the %(budget)s budget (%(share)s).") % {
            "spent": usd(spent_month),
            "budget": usd(monthly),
            "share": percent(month_share),
        }
        if month_share >= 1:
            advice = _(
                "This month's budget is spent: new images are refused until next month (images from the cache "
                "still answer). Raise MONTHLY_BUDGET_USD to go on."
            )
            found.append(Check(_("Spend this month"), BAD, summary, advice, **costs))
        elif month_share >= BUDGET_WARNING:
            advice = _(
                "Over %(share)s of this month's budget is spent: new images will be refused once it is all "
                "spent. Lower the tiers' daily limits, or raise MONTHLY_BUDGET_USD."
            ) % {"share": percent(BUDGET_WARNING)}
            found.append(Check(_("Spend this month"), WARN, summary, advice, **costs))
        else:
            found.append(Check(_("Spend this month"), OK, summary, **costs))
    if settings.DAILY_BUDGET_USD:
        today_share = spent_today / settings.DAILY_BUDGET_USD
        summary = _("%(spent)s of today's %(budget)s budget (%(share)s).") % {
            "spent": usd(spent_today),
            "budget": usd(settings.DAILY_BUDGET_USD),
            "share": percent(today_share),
        }
        if today_share >= 1:
            advice = _(
                "Today's budget is spent: new images are refused until midnight (%(zone)s). Raise "
                "DAILY_BUDGET_USD to go on."
            ) % {"zone": settings.TIME_ZONE}
            found.append(Check(_("Spend today"), BAD, summary, advice, **costs))
        elif today_share >= BUDGET_WARNING:
            advice = _("Over %(share)s of today's budget is spent.") % {"share": percent(BUDGET_WARNING)}
            found.append(Check(_("Spend today"), WARN, summary, advice, **costs))
        else:
            found.append(Check(_("Spend today"), OK, summary, **costs))
        return found
    today_share = spent_today / daily
    summary = _("%(spent)s of a daily share of %(share)s (%(percent)s).") % {
        "spent": usd(spent_today),
        "share": usd(daily),
        "percent": percent(today_share),
    }
    if today_share > 1:
        # A day over its share is a pace, not an overrun: the month's check turns red when it is one.
        advice = _("Today's spend is over its share of the budget: at this pace, the month goes over budget.")
        return [*found, Check(_("Spend today"), WARN, summary, advice, **costs)]
    return [*found, Check(_("Spend today"), OK, summary, **costs)]
