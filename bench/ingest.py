"""The webhook ingest scenario: the production server (uvicorn as compose.yaml runs it, N workers, uvloop
and httptools, Redis as the cache) taking Telegram's updates from a load generator (bench/loadgen.py,
a process of its own) as fast as Telegram may send them, and every update accounted for afterwards."""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from asgiref.sync import sync_to_async

from accounts import days
from accounts.models import QuotaUsage
from botcore.models import ProcessedUpdate
from tests.fakes import FakeGemini, FakeTelegram
from tests.fakes.processes import BOT_TOKEN, GEMINI_KEY, free_port, process_env

from .harness import ROOT, bench_tier, make_users, reset_data

APP = "nanobot_site.asgi:application"  # nanobot_site.asgi:django_application: Django's whole stack
SECRET = "bench-ingest-secret-0123456789"
WEBHOOK_PATH = "/telegram/webhook/"
BOT_ID = int(BOT_TOKEN.split(":")[0])
DAILY_LIMIT = 3
FIRST_USER = 400_000
FIRST_NEW_USER = 10_000_000  # the users who write for the first time, one /start each
WARM_UP_RATE, WARM_UP_SECONDS = 100, 2
# Answers leave at Telegram's 30 messages a second (the bot's budget, shared by the workers in Redis), and
# an update is taken from the queue only when one of the 256 the bot handles at once has its answer out:
# recording and answering the last of N updates takes about N / 30 s.
ANSWERS_PER_SECOND_AT_LEAST = 20


async def ingest(
    rates=(500, 1000), seconds=10.0, connections=40, users=2000, workers=2, cache_url="", profile=None, app=APP
):
    """Open-loop phases at each of `rates` updates a second, then a closed-loop one (as fast as the server
    answers), each `seconds` long, from `users` registered users and some new ones; after each, the
    phase's updates accounted for (recorded once, answered once) before the next begins."""
    tier = await sync_to_async(bench_tier)("bench ingest", daily_limit=DAILY_LIMIT)
    await sync_to_async(reset_data)()
    user_ids = await sync_to_async(make_users)(users, first_id=FIRST_USER, tier=tier)
    await sync_to_async(_images_used_up_today)(tier)
    phases = []
    # Telegram's send limits enforced: the answers of every worker draw from the bot's one budget.
    with FakeTelegram(token=BOT_TOKEN, rate_limits=True) as tg, FakeGemini(api_key=GEMINI_KEY) as gemini:
        async with web_server(tg, gemini, workers, cache_url, app) as server:
            load = Load(server, user_ids, connections, profile)
            # Each worker starts its bot on its first update; the figures are of warm workers.
            warm_up = await load.phase(WARM_UP_RATE, WARM_UP_SECONDS)
            await accounted(tg, load, warm_up)
            for rate in [*rates, 0]:
                figures = await load.phase(rate, seconds)
                figures.update(await accounted(tg, load, figures))
                phases.append(figures)
            errors_logged = server.errors_logged()
    for figures in phases:
        figures["server_errors_logged"] = errors_logged  # the log is one for the whole run
    return phases


def _images_used_up_today(tier):
    """Every registered user has used today's images: their chatter is refused, no image is paid for."""
    today = days.today()
    QuotaUsage.objects.bulk_create(QuotaUsage(user=user, day=today, used=DAILY_LIMIT) for user in tier.users.all())


class WebServer:
    def __init__(self, process, url, log_path):
        self.process, self.url, self.log_path = process, url, log_path

    def worker_pids(self):
        """The worker processes uvicorn started (its children but multiprocessing's resource tracker);
        with one worker, uvicorn serves in its own process."""
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    command = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid and b"resource_tracker" not in command:
                    children.append(int(entry))
        return children or [self.process.pid]

    def errors_logged(self):
        lines = self.log_path.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if " ERROR " in line or line.startswith("Traceback"))


@asynccontextmanager
async def web_server(tg, gemini, workers, cache_url, app=APP):
    """uvicorn as compose.yaml's web service runs it, on this database, the fakes and the cache."""
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="nanobot-bench-web-")) / "web.log"
    env = process_env(tg, gemini, TELEGRAM_WEBHOOK_SECRET=SECRET, ALLOWED_HOSTS="127.0.0.1")
    if cache_url:
        env["CACHE_URL"] = cache_url
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--http", "httptools"]
    command += ["--proxy-headers", "--forwarded-allow-ips", "*"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = WebServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        await _healthy(server, workers)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(f"  (the web server's log: {log_path})")


async def _healthy(server, workers):
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(600):
            try:
                if (await http.get("/healthz")).status_code == 200 and len(server.worker_pids()) == workers:
                    return
            except httpx.TransportError:
                pass
            if server.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the web server did not start; see {server.log_path}")


class Load:
    """Phases of load from bench/loadgen.py, each with update ids and new users of its own."""

    def __init__(self, server, user_ids, connections, profile=None):
        self.server, self.user_ids, self.connections, self.profile = server, user_ids, connections, profile
        self.next_update_id, self.next_new_user, self.seed = 1, FIRST_NEW_USER, 0
        self.expected = Counter()  # answers owed to each chat, over every phase so far

    async def phase(self, rate, seconds):
        orders = {
            "url": self.server.url + WEBHOOK_PATH,
            "secret": SECRET,
            "rate": rate,
            "seconds": seconds,
            "connections": self.connections,
            "users": self.user_ids,
            "first_update_id": self.next_update_id,
            "first_new_user": self.next_new_user,
            "seed": self.seed,
        }
        pids = self.server.worker_pids()
        services = _service_pids()
        cpu_before, services_before, machine_before = _cpu_seconds(pids), _cpu_seconds(services), _machine_ticks()
        own_before = _own_cpu_seconds()
        generator = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        samplers = self._sample(pids, rate, seconds)
        output, _ = await generator.communicate(json.dumps(orders).encode())
        for sampler in samplers:
            await asyncio.to_thread(sampler.wait)
        if generator.returncode:
            raise RuntimeError(f"the load generator failed ({generator.returncode})")
        ended = time.monotonic()
        cpu_after, services_after, machine_after = _cpu_seconds(pids), _cpu_seconds(services), _machine_ticks()
        own = _own_cpu_seconds() - own_before
        seen = json.loads(output)
        self.next_update_id += seen["posted"]
        self.next_new_user += seen["kinds"]["start_new"]
        self.seed += 1
        accepted = seen.pop("accepted")
        self.expected.update(chat for _, chat in accepted)
        busy, total = (after - before for after, before in zip(machine_after, machine_before, strict=True))
        ticks = os.sysconf("SC_CLK_TCK")
        ours = (cpu_after - cpu_before) + (services_after - services_before) + own
        return {
            "mode": f"open loop, {rate}/s offered" if rate else f"closed loop, {self.connections} connections",
            "seconds": round(seen["seconds"], 2),
            "posted": seen["posted"],
            "answered_200": len(accepted),
            "updates_per_second": round(len(accepted) / seen["seconds"], 1),
            "p50_ms": seen["p50_ms"],
            "p95_ms": seen["p95_ms"],
            "p99_ms": seen["p99_ms"],
            "max_ms": seen["max_ms"],
            "p99_ms_by_second": seen["p99_ms_by_second"],
            "other_statuses": {status: n for status, n in seen["statuses"].items() if status != "200"},
            "transport_errors": seen["errors"],
            "worst_send_lag_ms": seen["worst_send_lag_ms"],
            "mix": seen["kinds"],
            "web_workers_cpu_ms_per_update": round((cpu_after - cpu_before) * 1000 / max(1, len(accepted)), 3),
            "load_generator_cpu_ms_per_update": round(seen["cpu_s"] * 1000 / max(1, seen["posted"]), 3),
            "machine_cpu_busy_percent": round(100 * busy / max(1, total)),
            # What the rest of the machine took meanwhile (other work, the kernel's): the figures are
            # only as good as this is small.
            "cpu_percent_not_of_this_run": round(max(0.0, 100 * (busy / ticks - ours) / max(1, total / ticks))),
            "_accepted_ids": [update_id for update_id, _ in accepted],
            "_ended": ended,
        }

    def _sample(self, pids, rate, seconds):
        """With `profile` (a directory), py-spy samples each worker while the load lasts (docs/benchmarks.md)."""
        if not self.profile:
            return []
        Path(self.profile).mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).with_name("py-spy")
        return [
            subprocess.Popen(
                [py_spy, "record", "--gil", "--format", "raw", "--duration", str(max(1, int(seconds))), "--pid"]
                + [str(pid), "--output", str(Path(self.profile) / f"{rate or 'closed'}-{pid}.txt")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in pids
        ]


async def accounted(tg, load, figures):
    """Wait until each of the phase's accepted updates is recorded as taken (a ProcessedUpdate row) and
    every chat has as many answers as updates it sent; what is missing at the timeout is counted lost."""
    ids = set(figures.pop("_accepted_ids"))
    ended = figures.pop("_ended")
    timeout = 120 + sum(load.expected.values()) / ANSWERS_PER_SECOND_AT_LEAST
    recorded_after = answered_after = None
    while True:
        recorded = await sync_to_async(_recorded)(ids)
        answers = Counter(call.params.get("chat_id") for call in tg.calls_of("sendMessage") if call.status == 200)
        unanswered = sum(max(0, owed - answers[chat]) for chat, owed in load.expected.items())
        now = time.monotonic()
        if recorded_after is None and len(recorded & ids) == len(ids):
            recorded_after = now - ended
        if answered_after is None and not unanswered:
            answered_after = now - ended
        if (recorded_after is not None and answered_after is not None) or now - ended > timeout:
            break
        await asyncio.sleep(0.5)
    return {
        "recorded_once": len(recorded & ids),
        "not_recorded": len(ids - recorded),
        "unanswered": unanswered,
        "answered_twice": sum(max(0, answers[chat] - owed) for chat, owed in load.expected.items()),
        "telegram_429s_so_far": tg.rate_limited,
        "seconds_until_all_recorded": None if recorded_after is None else round(recorded_after, 1),
        "seconds_until_all_answered": None if answered_after is None else round(answered_after, 1),
    }


def _recorded(ids):
    """The ids among `ids` the bot recorded as taken (the table's key makes each at most once)."""
    if not ids:
        return set()
    taken = ProcessedUpdate.objects.filter(bot_id=BOT_ID, update_id__gte=min(ids), update_id__lte=max(ids))
    return set(taken.values_list("update_id", flat=True))


def _cpu_seconds(pids):
    """User and system CPU of these processes so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _service_pids():
    """PostgreSQL's and Redis's processes: the web workers' database and cache."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                name = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if name.startswith(("postgres", "redis-server")):
                pids.append(int(entry))
    return pids


def _own_cpu_seconds():
    """This process's CPU (the fake Bot API's threads) and its children's (the load generator's)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _machine_ticks():
    """(busy, total) CPU ticks of the whole machine so far: how much of the two cores the run left idle."""
    # user nice system idle iowait irq softirq steal (guest time is already in user and nice)
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)
