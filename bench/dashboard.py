"""The dashboard with three months of traffic: 1,000,000 generations from 100,000 users on
PostgreSQL, and the server time and SQL queries of its busiest pages."""

import statistics
import time
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts import payments
from accounts.models import CreditPack, TelegramUser, Tier
from botcore import spending, summaries
from dashboard import costreports

from .harness import reset_data

PAGES = {
    "overview": "/",
    "users list": "/users/",
    "users search": "/users/?q=bench_77",
    "users, last seen first": "/users/?sort=-last_seen",
    "generations list": "/generations/",
    "generations, failed": "/generations/?status=failed",
    "generations, oldest first": "/generations/?sort=oldest",
    "generations of one user": "/generations/?user=5000077",
    "cost report, 30 days": "/costs/",
    "cost report, 90 days": "/costs/?range=90",
    "analytics, 30 days": "/analytics/",
    "analytics, 90 days": "/analytics/?range=90",
    "audit log": "/audit/",
    "broadcasts": "/broadcasts/",
    "payments list": "/payments/",
    "payments, refunded": "/payments/?status=refunded",
    "credit packs": "/packs/",
}
PAYMENTS = 50_000  # over the 92 days, one in 20 refunded


def seed(users, generations):
    """Rows made by SQL (generate_series): seconds rather than the ORM's hours."""
    reset_data()
    tier = Tier.objects.get_or_create(name="bench dashboard", defaults={"daily_limit": 50, "max_resolution": "4K"})[0]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO accounts_telegramuser (telegram_id, username, first_name, language_code, tier_id,
                resolution, aspect_ratio, is_active, ever_banned, credits, created_at, last_seen_at)
            SELECT 5000000 + g, 'bench_' || g, 'Bench ' || g, 'en', %s, '2K', '1:1', g %% 50 <> 0, false, 0,
                now() - g * interval '5 minutes', now() - g * interval '1 minute'
            FROM generate_series(1, %s) AS g
            """,
            [tier.pk, users],
        )
        cursor.execute("SELECT min(id) FROM accounts_telegramuser")
        first_user = cursor.fetchone()[0]
        # ~92 days of traffic, one generation every 8 s; 90% delivered, 7% failed, 3% refused.
        cursor.execute(
            """
            INSERT INTO botcore_generation (user_id, tier, chat_id, prompt, kind, batch_key, resolution, aspect_ratio,
                reference_count, "references", provider, model, status, error_code, error_message,
                upstream_latency_ms, total_latency_ms, cost_usd, file_id, document_file_id, original,
                thought_signature, cache_key, cache_hit, quota_day, created_at, finished_at, runner, attempts,
                model_turn)
            SELECT %s + (g %% %s), %s, 5000000 + (g %% %s), 'a bench picture number ' || g, 'text', '',
                CASE WHEN g %% 10 = 0 THEN '4K' ELSE '2K' END, '1:1', 0, '[]', 'gemini',
                'gemini-3-pro-image-preview',
                CASE WHEN g %% 100 < 90 THEN 'delivered' WHEN g %% 100 < 97 THEN 'failed' ELSE 'refused' END,
                CASE WHEN g %% 100 BETWEEN 90 AND 96 THEN 'safety' ELSE '' END, '',
                8000 + g %% 20000, 9000 + g %% 25000,
                CASE WHEN g %% 100 < 90 THEN (CASE WHEN g %% 10 = 0 THEN 0.24 ELSE 0.134 END) ELSE 0 END,
                'file' || g, '', '', '', '', g %% 50 = 0, (now() - g * interval '8 seconds')::date,
                now() - g * interval '8 seconds', now() - g * interval '8 seconds' + interval '12 seconds', '', 1, '[]'
            FROM generate_series(1, %s) AS g
            """,
            [first_user, users, tier.name, users, generations],
        )
        pack = CreditPack.objects.create(name="bench 100", stars=250, images=100)
        # One payment every ~2.6 minutes (a paying user in 20 buying once a month or so).
        cursor.execute(
            """
            INSERT INTO accounts_payment (user_id, pack_id, pack_name, stars, images, tier, charge_id, payload,
                status, paid_at, refunded_at)
            SELECT %s + (g * 7 %% %s), %s, 'bench 100', 250, 100, '', 'stxBench' || g, 'pack:0:250:100:0:0',
                CASE WHEN g %% 20 = 0 THEN 'refunded' ELSE 'paid' END, now() - g * interval '159 seconds',
                CASE WHEN g %% 20 = 0 THEN now() - g * interval '159 seconds' + interval '1 day' END
            FROM generate_series(1, %s) AS g
            """,
            [first_user, users, pack.pk, PAYMENTS],
        )
        # What autovacuum does within a minute of such a load: statistics, and the GIN indexes' pending
        # entries merged (the user search's trigram indexes are scanned slowly until then).
        cursor.execute("VACUUM ANALYZE")


def dashboard(users=100_000, generations=1_000_000, repeat=5):
    if connection.vendor != "postgresql":
        return {"skipped": "needs PostgreSQL (DATABASE_URL=postgres://...)"}
    started = time.monotonic()
    seed(users, generations)
    figures = {"users": users, "generations": generations, "payments": PAYMENTS}
    figures["seed_seconds"] = round(time.monotonic() - started, 1)
    # Reports read the open days' generations row by row (the rest from summaries): how many there
    # are depends on the time of day in TIME_ZONE, so the figures say it.
    today = timezone.localdate()
    figures["generations in open days"] = summaries.created_on(summaries.first_open_day(), today).count()
    staff = get_user_model().objects.create_user("bench-staff", is_staff=True)
    client = Client()
    client.force_login(staff)
    for name, url in PAGES.items():
        begun = time.perf_counter()
        client.get(url)  # the first view: templates compiled, closed days summed up
        figures[f"{name} first view ms"] = f"{(time.perf_counter() - begun) * 1000:.0f}"
        times, queries = [], 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                begun = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - begun) * 1000)
            queries = len(captured)
        status = "" if response.status_code == 200 else f" (HTTP {response.status_code})"
        figures[f"{name} ms (median of {repeat})"] = f"{statistics.median(times):.0f}{status}"
        figures[f"{name} queries"] = queries
    figures.update(spend_check(repeat * 4))
    figures.update(checkout(repeat * 4))
    figures.update(revenue(repeat * 4))
    return figures


def revenue(repeat):
    """The cost report's part that payments add: Stars paid and refunded by day (one query)."""
    last = timezone.localdate()
    figures = {}
    for span in (30, 90):
        times = []
        for _ in range(repeat):
            begun = time.perf_counter()
            costreports.revenue_by_day(last - timedelta(span - 1), last)
            times.append((time.perf_counter() - begun) * 1000)
        figures[f"revenue by day, {span} days ms (median of {repeat})"] = f"{statistics.median(times):.1f}"
    return figures


def checkout(repeat):
    """What Telegram waits for (at most 10 s) before it takes a user's Stars: the checkout's check
    (accounts/payments.checkout_refusal) of a pack on sale, for one of the 100,000 users."""
    pack = CreditPack.objects.create(name="bench pack", stars=50, images=10)  # on sale, unlike the seeded one
    user = TelegramUser.objects.order_by("pk")[50_000]
    payload = payments.Offer.of(pack).payload
    try:
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                begun = time.perf_counter()
                refusal = payments.checkout_refusal(
                    telegram_id=user.telegram_id, payload=payload, currency="XTR", total=50
                )
                times.append((time.perf_counter() - begun) * 1000)
        assert refusal is None
    finally:
        pack.delete()
    return {
        f"checkout check ms (median of {repeat})": f"{statistics.median(times):.1f}",
        "checkout check queries": len(captured),
    }


def spend_check(repeat):
    """The budget check each paid call makes first (botcore/spending.py), with both limits set."""
    with override_settings(DAILY_BUDGET_USD=Decimal(10**6), MONTHLY_BUDGET_USD=Decimal(10**7)):
        spending.reached([])
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                begun = time.perf_counter()
                spending.reached([])
                times.append((time.perf_counter() - begun) * 1000)
    return {
        f"spend check before a paid call ms (median of {repeat})": f"{statistics.median(times):.1f}",
        "spend check queries": len(captured),
    }
