"""Where a generation job runs: a Celery worker when a broker is configured, else this process."""

import asyncio
import threading

from asgiref.sync import sync_to_async
from django import db
from django.conf import settings

from . import jobs

PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


async def submit(application, batch, status_message_id):
    """Run the job of these Generations (one request's images)."""
    if settings.CELERY_BROKER_URL:
        from .tasks import run_generation_task

        # A bounded retry: a user waiting on "Creating your image…" should hear within seconds
        # that the broker is down, not after Celery's default minutes of reconnecting.
        await sync_to_async(run_generation_task.apply_async)(
            ([generation.pk for generation in batch], status_message_id), retry=True, retry_policy=PUBLISH_RETRY
        )
        return
    # Application.stop() awaits tasks made by create_task, so a shutdown lets running jobs finish.
    application.create_task(
        jobs.run_generation(
            batch,
            bot=application.bot,
            provider=application.bot_data["provider"],
            status_message_id=status_message_id,
        ),
        name=f"generation-{batch[0].pk}",
    )


def start_broadcast(broadcast_id):
    """Send a broadcast in the background: a Celery worker when configured, else a thread here."""
    if settings.CELERY_BROKER_URL:
        from .tasks import send_broadcast_task

        send_broadcast_task.apply_async((broadcast_id,), retry=True, retry_policy=PUBLISH_RETRY)
        return
    threading.Thread(
        target=_send_broadcast, args=(broadcast_id,), name=f"broadcast-{broadcast_id}", daemon=True
    ).start()


def _send_broadcast(broadcast_id):
    from . import broadcasts

    async def send():
        try:
            await broadcasts.send(broadcast_id)
        finally:
            # Its queries ran in asgiref's one thread for sync code, not this one: close the connection there.
            await sync_to_async(db.connections.close_all)()

    asyncio.run(send())
