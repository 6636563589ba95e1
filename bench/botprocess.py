"""The bot as `manage.py runbot` runs it, plus counters the benchmark reads (counters.py)."""

import os
import sys

import django

from .counters import report_on_sigusr1

_queries = [0]  # the bot runs its ORM calls on one thread (sync_to_async), so no lock is needed


def count_query(execute, sql, params, many, context):
    _queries[0] += 1
    return execute(sql, params, many, context)


def count_queries_of(sender, connection, **kwargs):
    connection.execute_wrappers.append(count_query)


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanobot_site.settings")
    django.setup()
    from django.core.management import call_command
    from django.db.backends.signals import connection_created

    connection_created.connect(count_queries_of)
    report_on_sigusr1(lambda: _queries[0])
    call_command("runbot")


if __name__ == "__main__":
    sys.exit(main())
