"""The ingest scenario's load generator: Telegram's side of a webhook, in a process of its own.

`python -m bench.loadgen` reads its orders as JSON on stdin and writes what it saw as JSON on stdout.
It posts realistic updates (private messages from many users: /start, /help, /quota and plain chatter)
with the secret token header, over at most `connections` kept-alive connections, as Telegram does
(setWebhook's max_connections, 40 by default). Open loop: `rate` updates a second, each sent when its
time comes whether or not the earlier ones were answered. Closed loop (`rate` 0): each connection posts
the next update as soon as the last is answered, the most the server takes. It imports nothing of
NanoBot's (nor Django), so its CPU is its own; aiohttp on uvloop keeps that small.
"""

import asyncio
import json
import random
import resource
import sys
import time

import aiohttp
import uvloop

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# What people send a bot like this one, and what each costs it: /start and /quota read the user and
# their quota, /help nothing; chatter is a prompt, refused because its sender has no images left today
# (the whole request path up to the quota reservation that says no; no image is paid for at 500/s).
MIX = {"start": 5, "start_new": 5, "help": 10, "quota": 20, "chatter": 60}
PROMPTS = [
    "a lighthouse in a storm, oil painting",
    "my cat as an astronaut floating above Saturn",
    "hello? are you there",
    "a cosy reading nook with rain on the window, watercolor",
    "thanks!",
    "same again but at night",
    "a logo for a bakery called Crumbs, minimal, two colours",
    "portrait of an old fisherman, dramatic light, 35mm",
]


class Updates:
    """Update JSON as Telegram sends it: private chats, one message id sequence per chat, users named as
    the database knows them (a changed name would cost an UPDATE a real returning user doesn't)."""

    def __init__(self, first_update_id, users, first_new_user, seed):
        self.next_update_id = first_update_id
        self.users = users
        self.next_new_user = first_new_user
        self.random = random.Random(seed)
        self.kinds = self.random.choices(list(MIX), weights=list(MIX.values()), k=100_000)
        self.message_ids = {}
        self.count = 0

    def next(self):
        """(update_id, chat_id, kind, body)."""
        kind = self.kinds[self.count % len(self.kinds)]
        self.count += 1
        if kind == "start_new":  # first contact: the user is registered
            user_id, self.next_new_user = self.next_new_user, self.next_new_user + 1
        else:
            user_id = self.random.choice(self.users)
        text = {"help": "/help", "quota": "/quota", "chatter": self.random.choice(PROMPTS)}.get(kind, "/start")
        update_id, self.next_update_id = self.next_update_id, self.next_update_id + 1
        message_id = self.message_ids[user_id] = self.message_ids.get(user_id, 100) + 1
        person = {"id": user_id, "first_name": "Bench", "username": f"bench{user_id}"}
        message = {
            "message_id": message_id,
            "from": {**person, "is_bot": False, "language_code": "en"},
            "chat": {**person, "type": "private"},
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"offset": 0, "length": len(text), "type": "bot_command"}]
        return update_id, user_id, kind, json.dumps({"update_id": update_id, "message": message}).encode()


class Run:
    def __init__(self, orders):
        self.url = orders["url"]
        self.headers = {"Content-Type": "application/json", SECRET_HEADER: orders["secret"]}
        self.updates = Updates(orders["first_update_id"], orders["users"], orders["first_new_user"], orders["seed"])
        self.latencies = []
        self.started = 0.0
        self.seconds = []  # when each answer came, from the start: where in the run the slow ones were
        self.accepted = []  # [update_id, chat_id] answered 200
        self.kinds = dict.fromkeys(MIX, 0)
        self.statuses = {}
        self.errors = {}
        self.worst_lag = 0.0  # how late the open loop sent an update, at worst

    async def post(self, session):
        update_id, chat_id, kind, body = self.updates.next()
        self.kinds[kind] += 1
        started = time.perf_counter()
        try:
            async with session.post(self.url, data=body, headers=self.headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
            return
        self.latencies.append(time.perf_counter() - started)
        self.seconds.append(started - self.started)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.accepted.append([update_id, chat_id])

    async def open_loop(self, session, rate, seconds):
        loop = asyncio.get_running_loop()
        total = round(rate * seconds)
        sent, pending = 0, set()
        started = loop.time()
        while sent < total:
            now = loop.time()
            due = min(total, int((now - started) * rate) + 1)
            while sent < due:
                self.worst_lag = max(self.worst_lag, now - (started + sent / rate))
                task = loop.create_task(self.post(session))
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.sleep(max(0.0, started + sent / rate - loop.time()))
        await asyncio.gather(*pending)

    async def closed_loop(self, session, connections, seconds):
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds

        async def one_connection():
            while loop.time() < end:
                await self.post(session)

        await asyncio.gather(*(one_connection() for _ in range(connections)))

    async def run(self, rate, seconds, connections):
        connector = aiohttp.TCPConnector(limit=connections, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)  # Telegram gives up on a webhook after about a minute
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            started = self.started = time.perf_counter()
            if rate:
                await self.open_loop(session, rate, seconds)
            else:
                await self.closed_loop(session, connections, seconds)
            return time.perf_counter() - started


def percentile(ordered, share):
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else None


def by_second(run):
    """The latencies of the updates sent in each second of the run."""
    seconds = [[] for _ in range(int(max(run.seconds, default=0)) + 1)]
    for sent, latency in zip(run.seconds, run.latencies, strict=True):
        seconds[int(sent)].append(latency)
    return seconds


def main():
    orders = json.load(sys.stdin)
    run = Run(orders)
    before = resource.getrusage(resource.RUSAGE_SELF)
    seconds = uvloop.run(run.run(orders["rate"], orders["seconds"], orders["connections"]))
    after = resource.getrusage(resource.RUSAGE_SELF)
    ordered = sorted(run.latencies)
    ms = lambda seconds: None if seconds is None else round(seconds * 1000, 2)  # noqa: E731
    json.dump(
        {
            "posted": run.updates.count,
            "seconds": seconds,
            "kinds": run.kinds,
            "statuses": {str(status): count for status, count in run.statuses.items()},
            "errors": run.errors,
            "accepted": run.accepted,
            "p50_ms": ms(percentile(ordered, 0.50)),
            "p95_ms": ms(percentile(ordered, 0.95)),
            "p99_ms": ms(percentile(ordered, 0.99)),
            "max_ms": ms(ordered[-1] if ordered else None),
            "worst_send_lag_ms": ms(run.worst_lag),
            "p99_ms_by_second": [ms(percentile(sorted(second), 0.99)) for second in by_second(run)],
            "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
