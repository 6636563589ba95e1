"""The bot as `manage.py runbot` runs it, plus counters the benchmark reads.

On SIGUSR1 it writes its CPU time, memory and SQL query count so far to $BENCH_STATS.
"""

import json
import os
import resource
import signal
import sys

import django

_queries = [0]  # the bot runs its ORM calls on one thread (sync_to_async), so no lock is needed


def count_query(execute, sql, params, many, context):
    _queries[0] += 1
    return execute(sql, params, many, context)


def count_queries_of(sender, connection, **kwargs):
    connection.execute_wrappers.append(count_query)


def write_stats(signum, frame):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    stats = {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "cpu_sys_s": usage.ru_stime,
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024,
        "queries": _queries[0],
    }
    path = os.environ["BENCH_STATS"]
    with open(path + ".tmp", "w") as out:
        json.dump(stats, out)
    os.replace(path + ".tmp", path)


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanobot_site.settings")
    django.setup()
    from django.core.management import call_command
    from django.db.backends.signals import connection_created

    connection_created.connect(count_queries_of)
    signal.signal(signal.SIGUSR1, write_stats)
    call_command("runbot")


if __name__ == "__main__":
    sys.exit(main())
