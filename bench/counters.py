"""What a bot process under benchmark reports: on SIGUSR1 it writes its CPU time, memory and (when
counted) SQL queries so far to $BENCH_STATS."""

import json
import os
import resource
import signal


def report_on_sigusr1(queries=lambda: 0):
    def write_stats(signum, frame):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
        stats = {
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "cpu_sys_s": usage.ru_stime,
            "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
            "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024,
            "queries": queries(),
        }
        path = os.environ["BENCH_STATS"]
        with open(path + ".tmp", "w") as out:
            json.dump(stats, out)
        os.replace(path + ".tmp", path)

    signal.signal(signal.SIGUSR1, write_stats)
