"""Run the benchmarks: `python -m bench [scenario ...]`. See docs/benchmarks.md."""

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

SCENARIOS = ["burst", "overhead", "memory", "bombs", "race", "dashboard", "ingest"]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help=f"{SCENARIOS} (default: all)")
    parser.add_argument("--users", type=int, nargs="+", default=[30, 200], help="burst: users sending at once")
    parser.add_argument("--latency", type=float, default=3.0, help="burst: image API seconds per image")
    parser.add_argument("--generations", type=int, default=500, help="overhead: generations per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50], help="overhead: jobs in flight")
    parser.add_argument("--jobs", type=int, default=50, help="memory: concurrent 4K jobs")
    parser.add_argument("--bombs", type=int, default=3, help="bombs: users sending a decompression bomb at once")
    parser.add_argument("--requests", type=int, default=1000, help="race: simultaneous requests")
    parser.add_argument("--dashboard-users", type=int, default=100_000, help="dashboard: users to seed")
    parser.add_argument("--dashboard-generations", type=int, default=1_000_000, help="dashboard: generations to seed")
    parser.add_argument("--ingest-rates", type=int, nargs="+", default=[500, 1000], help="ingest: updates/s offered")
    parser.add_argument("--ingest-seconds", type=float, default=10.0, help="ingest: seconds of load per phase")
    parser.add_argument("--ingest-connections", type=int, default=40, help="ingest: connections (Telegram's default)")
    parser.add_argument("--ingest-users", type=int, default=2000, help="ingest: registered users writing")
    parser.add_argument("--ingest-workers", type=int, default=2, help="ingest: uvicorn worker processes")
    parser.add_argument("--ingest-cache", default="redis://127.0.0.1:6379/12", help="ingest: the server's CACHE_URL")
    parser.add_argument("--ingest-profile", type=Path, help="ingest: py-spy each web worker into this directory")
    parser.add_argument("--ingest-app", default="nanobot_site.asgi:application", help="ingest: the ASGI app served")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/<time>.json)")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    from . import dashboard, ingest, scenarios

    chosen = args.scenarios or SCENARIOS
    databases = setup_databases(verbosity=0, interactive=False)
    results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "scenarios": {}}
    try:
        for name in chosen:
            started = time.monotonic()
            if name == "burst":
                figures = [run(scenarios.burst(users, args.latency)) for users in args.users]
            elif name == "overhead":
                figures = [run(scenarios.overhead(args.generations, c)) for c in args.concurrency]
                figures.append(run(scenarios.overhead(args.generations, 1, returning=True)))
            elif name == "memory":
                figures = run(scenarios.memory(args.jobs))
            elif name == "bombs":
                figures = run(scenarios.bombs(args.bombs))
            elif name == "race":
                figures = scenarios.race(args.requests)
            elif name == "ingest":
                figures = run(
                    ingest.ingest(
                        args.ingest_rates,
                        args.ingest_seconds,
                        args.ingest_connections,
                        args.ingest_users,
                        args.ingest_workers,
                        args.ingest_cache,
                        args.ingest_profile,
                        args.ingest_app,
                    )
                )
            else:
                figures = dashboard.dashboard(args.dashboard_users, args.dashboard_generations)
            results["scenarios"][name] = figures
            print_figures(name, figures, time.monotonic() - started)
    finally:
        teardown_databases(databases, verbosity=0)
        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)  # the results the bot kept
    path = args.json or Path(__file__).parent / "results" / f"{results['date'].replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(f"\nresults written to {path}")


def run(scenario):
    from asgiref.sync import sync_to_async
    from django.db import connections

    async def and_close():
        try:
            return await scenario
        finally:  # the ORM ran on sync_to_async's thread: close its connection there
            await sync_to_async(connections.close_all)()

    return asyncio.run(and_close())


def machine():
    from django.db import connection

    return {
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0)),
        "database": connection.vendor,
    }


def print_figures(name, figures, seconds):
    print(f"\n== {name} ({seconds:.0f} s)")
    for run in figures if isinstance(figures, list) else [figures]:
        width = max(map(len, run))
        for key, value in run.items():
            print(f"  {key:<{width}}  {value}")
        print()


if __name__ == "__main__":
    sys.exit(main())
