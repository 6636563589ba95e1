"""Database connections that survive the database: a restart, a failover, an idle timeout or
pg_terminate_backend ends a connection, and the next unit of work must not inherit it."""

from django.db import connections


def make_usable() -> None:
    """Call at the start of each unit of work (an update, a job, a sweep, a broadcast step), on the
    thread that runs its queries: a connection the database has ended is dropped, so the next query
    opens a new one. Like Django's close_old_connections for a request, but it keeps a healthy
    connection instead of reconnecting every time (one cheap round trip)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
            connection.close()
