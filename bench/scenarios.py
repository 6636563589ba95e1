"""The scenarios of docs/benchmarks.md. Each returns a dict of figures it measured."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import connection

from accounts import days
from accounts.models import QuotaUsage, TelegramUser
from botcore import generations
from botcore.models import Generation
from tests.fakes import FakeGemini, FakeTelegram
from tests.fakes.images import png_bomb
from tests.fakes.processes import BOT_TOKEN, GEMINI_KEY

from .harness import bench_tier, bot_process, finished, make_users, profile, reset_data

TELEGRAM_MESSAGES_PER_SECOND = 30


def delivered_photos(tg):
    return [call for call in tg.calls_of("sendPhoto") if call.status == 200]


async def burst(users=200, latency=3.0):
    """`users` people send a prompt at the same instant; the image API takes `latency` seconds. NanoBot
    and the reference bot (bench/reference.py) in turn, each against fresh fakes with Telegram's limits."""
    reference = await _burst_of("bench.reference", users, latency)
    nanobot = await _burst_of("bench.botprocess", users, latency)
    # Results only: every user's photo, paced at 30 messages a second after the first second's worth.
    floor = latency + max(0, users - TELEGRAM_MESSAGES_PER_SECOND) / TELEGRAM_MESSAGES_PER_SECOND
    return {
        "users": users,
        "physical_floor_seconds": round(floor, 2),
        **{f"nanobot_{key}": value for key, value in nanobot.items()},
        **{f"reference_{key}": value for key, value in reference.items()},
        "time_ratio_to_reference": round(
            nanobot["seconds_until_all_served"] / reference["seconds_until_all_served"], 3
        ),
        "cpu_ratio_to_reference": round(nanobot["cpu_ms_per_image"] / reference["cpu_ms_per_image"], 3),
    }


async def _burst_of(module, users, latency):
    tier = await sync_to_async(bench_tier)("bench burst")
    await sync_to_async(reset_data)()
    user_ids = await sync_to_async(make_users)(users, first_id=10_000, tier=tier)
    with FakeTelegram(token=BOT_TOKEN, rate_limits=True) as tg, FakeGemini(api_key=GEMINI_KEY) as gemini:
        gemini.latency = latency
        async with bot_process(tg, gemini, module=module) as bot:
            before = await bot.stats()
            started = time.monotonic()
            for user_id in user_ids:
                tg.push_text(user_id, f"a portrait of visitor {user_id}", **profile(user_id))
            served = await _photos_in_every_chat(tg, user_ids, timeout=600)
            after = await bot.stats()
    last_photo = max((call.at for call in served), default=started)
    return {
        "served": len(served),
        "seconds_until_all_served": round(last_photo - started, 2),
        "cpu_ms_per_image": round((after["cpu_s"] - before["cpu_s"]) * 1000 / max(1, len(served)), 1),
        "messages_sent": tg.messages_sent,
        "calls": len(tg.calls),
        "telegram_429s": tg.rate_limited,
    }


async def _photos_in_every_chat(tg, user_ids, timeout):
    """The first photo each user received, once all have one (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        first = {}
        for call in delivered_photos(tg):
            first.setdefault(call.params.get("chat_id"), call)
        if len(first) >= len(user_ids) or time.monotonic() > deadline:
            return list(first.values())
        await asyncio.sleep(0.05)


async def overhead(generations_count=500, concurrency=1, returning=False):
    """Bot CPU and SQL per generation with an instant image API, `concurrency` jobs in flight; each user's
    first image of the day, or (`returning`) a later one."""
    tier = await sync_to_async(bench_tier)("bench overhead")
    await sync_to_async(reset_data)()
    user_ids = await sync_to_async(make_users)(generations_count, first_id=100_000, tier=tier)
    if returning:
        await sync_to_async(_served_once_today)(tier)
    with FakeTelegram(token=BOT_TOKEN) as tg, FakeGemini(api_key=GEMINI_KEY) as gemini:
        async with bot_process(tg, gemini) as bot:
            before = await bot.stats()
            started = time.monotonic()
            pushed = 0
            deadline = started + 600
            while (done := len(delivered_photos(tg))) < generations_count and time.monotonic() < deadline:
                while pushed < generations_count and pushed - done < concurrency:
                    tg.push_text(user_ids[pushed], f"an instant picture {pushed}", **profile(user_ids[pushed]))
                    pushed += 1
                await asyncio.sleep(0.002)
            statuses = await finished(generations_count, timeout=120)
            seconds = time.monotonic() - started
            after = await bot.stats()
    return {
        "generations": generations_count,
        "concurrency": concurrency,
        "users": "returning" if returning else "first image of the day",
        "delivered": statuses.count("delivered"),
        "cpu_ms_per_generation": round((after["cpu_s"] - before["cpu_s"]) * 1000 / generations_count, 2),
        # of which in the kernel: socket and file system calls
        "cpu_ms_in_kernel": round((after["cpu_sys_s"] - before["cpu_sys_s"]) * 1000 / generations_count, 2),
        "queries_per_generation": round((after["queries"] - before["queries"]) / generations_count, 2),
        "generations_per_second": round(generations_count / seconds, 1),
    }


def _served_once_today(tier):
    today = days.today()
    QuotaUsage.objects.bulk_create(QuotaUsage(user=user, day=today, used=1) for user in tier.users.all())


def race(requests=1000, users=50, remaining=10, threads=64, limit=20):
    """`requests` simultaneous requests from `users` users with `remaining` images left each."""
    tier = bench_tier("bench race", daily_limit=limit)
    reset_data()
    user_ids = make_users(users, first_id=1_000_000, tier=tier)
    today = days.today()
    QuotaUsage.objects.bulk_create(
        QuotaUsage(user=user, day=today, used=limit - remaining) for user in TelegramUser.objects.filter(tier=tier)
    )
    go = threading.Event()

    def ask(i):
        go.wait()
        user_id = user_ids[i % users]
        try:
            generations.request(identity=generations.Identity(telegram_id=user_id), chat_id=user_id, prompt=f"race {i}")
            return True
        except generations.Refusal:
            return False

    def ask_and_close(i):
        try:
            return ask(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(ask_and_close, i) for i in range(requests)]
        time.sleep(0.5)  # let every thread reach the starting line
        started = time.monotonic()
        go.set()
        granted = sum(future.result() for future in futures)
        seconds = time.monotonic() - started
    allowed = users * remaining
    reserved = sum(QuotaUsage.objects.filter(day=today).values_list("reserved", flat=True))
    return {
        "database": connection.vendor,
        "requests": requests,
        "threads": threads,
        "allowed": allowed,
        "granted": granted,
        "reserved_in_database": reserved,
        "queued_generations": Generation.objects.filter(status=Generation.Status.QUEUED).count(),
        "exact": granted == allowed == reserved,
        "seconds": round(seconds, 2),
    }


async def memory(jobs=50, noise=0.25):
    """`jobs` 4K images (PNGs of 10+ MB) arriving at once; the bot process's peak memory."""
    tier = await sync_to_async(bench_tier)("bench memory")
    await sync_to_async(reset_data)()
    user_ids = await sync_to_async(make_users)(jobs, first_id=200_000, tier=tier)
    with FakeTelegram(token=BOT_TOKEN) as tg, FakeGemini(api_key=GEMINI_KEY) as gemini:
        gemini.noisy = noise
        gemini.latency = 1.0  # long enough for every job to be waiting upstream at once
        async with bot_process(tg, gemini) as bot:
            before = await bot.stats()
            for user_id in user_ids:
                tg.push_text(user_id, f"/hd a detailed city map {user_id}", **profile(user_id))
            statuses = await finished(jobs, timeout=600)
            after = await bot.stats()
    sizes = [len(call.files["document"].data) for call in tg.calls_of("sendDocument") if call.status == 200]
    return {
        "jobs": jobs,
        "delivered": statuses.count("delivered"),
        "original_mb": round(max(sizes, default=0) / 2**20, 1),
        "rss_before_mb": round(before["rss_mb"]),
        "peak_rss_mb": round(after["peak_rss_mb"]),
    }


async def bombs(senders=3):
    """`senders` users send a decompression bomb (a 160 KB PNG of 13000x13000 pixels) as a file at
    once; the bot process's memory, and what was paid for."""
    tier = await sync_to_async(bench_tier)("bench bombs")
    await sync_to_async(reset_data)()
    user_ids = await sync_to_async(make_users)(senders, first_id=300_000, tier=tier)
    bomb = png_bomb(13000, 13000)
    with FakeTelegram(token=BOT_TOKEN) as tg, FakeGemini(api_key=GEMINI_KEY) as gemini:
        async with bot_process(tg, gemini) as bot:
            before = await bot.stats()
            for user_id in user_ids:
                tg.push_document(user_id, bomb, file_name="bomb.png", mime_type="image/png", caption="colour it")
            statuses = await finished(senders, timeout=120)
            after = await bot.stats()
    return {
        "senders": senders,
        "bomb_kb": len(bomb) // 1024,
        "refused": statuses.count("failed"),
        "image_api_calls": len(gemini.requests),
        "rss_before_mb": round(before["rss_mb"]),
        "peak_rss_mb": round(after["peak_rss_mb"]),
        "added_mb": round(after["peak_rss_mb"] - before["rss_mb"]),
    }
