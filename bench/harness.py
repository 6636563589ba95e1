"""What every scenario needs: the fakes, a bot process of its own, and ways to watch it work."""

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

from asgiref.sync import sync_to_async

from accounts.models import CreditPack, LedgerEntry, Payment, QuotaUsage, TelegramUser, Tier
from botcore.models import Generation, ProcessedUpdate
from tests.fakes.processes import process_env

ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    def __init__(self, process, stats_path):
        self.process = process
        self.stats_path = stats_path

    async def stats(self):
        """CPU seconds, memory and SQL queries of the bot process so far."""
        self.stats_path.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        for _ in range(500):
            if self.stats_path.exists():
                return json.loads(self.stats_path.read_text())
            await asyncio.sleep(0.01)
        raise RuntimeError("the bot process did not report its figures")


@asynccontextmanager
async def bot_process(tg, gemini, module="bench.botprocess", **env):
    """`runbot` (or the reference bot, `bench.reference`) in a process of its own, so its CPU and memory
    are its own, ready to serve."""
    stats_path = Path(tempfile.mkdtemp()) / "stats.json"
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=process_env(tg, gemini, BENCH_STATS=stats_path, LOG_LEVEL="ERROR", **env),
    )
    try:
        await tg.wait_for(lambda t: t.calls_of("getUpdates"), timeout=60, what="the bot to start polling")
        yield BotProcess(process, stats_path)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def reset_data():
    ProcessedUpdate.objects.all().delete()  # each scenario's fake Bot API numbers its updates from 1
    Generation.objects.all().delete()
    QuotaUsage.objects.all().delete()
    LedgerEntry.objects.exclude(lot=None).delete()  # what was taken from lots, then the lots
    LedgerEntry.objects.all().delete()
    Payment.objects.all().delete()
    CreditPack.objects.all().delete()
    TelegramUser.objects.all().delete()


def make_users(count, *, first_id, tier):
    TelegramUser.objects.bulk_create(
        TelegramUser(telegram_id=telegram_id, **profile(telegram_id), language_code="en", tier=tier)
        for telegram_id in range(first_id, first_id + count)
    )
    return list(range(first_id, first_id + count))


def profile(telegram_id):
    """The names a bench user has in Telegram (what their messages carry) and so in the database."""
    return {"username": f"bench{telegram_id}", "first_name": "Bench"}


def bench_tier(name, **fields):
    tier, _ = Tier.objects.update_or_create(
        name=name,
        defaults={"daily_limit": None, "max_resolution": "4K", "cooldown_seconds": 0, "max_concurrent_jobs": 1000}
        | fields,
    )
    return tier


async def finished(count, timeout):
    """Wait until `count` generations are closed; their statuses."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = await sync_to_async(list)(
            Generation.objects.exclude(status__in=Generation.OPEN).values_list("status", flat=True)
        )
        if len(statuses) >= count or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.05)
