"""Where background work runs: a Celery worker when a broker is configured, else this process.

Tasks are sent by name (tasks.py defines them): the code that queues work doesn't import the code
that runs it, which itself imports the services that queue work.
"""

import asyncio

from asgiref.sync import sync_to_async
from celery import current_app
from django.conf import settings
from telegram import Message
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application

from botcore.models import Generation

from . import jobs

GENERATION_TASK = "botcore.tasks.run_generation_task"
BROADCAST_TASK = "botcore.tasks.send_broadcast_task"
# A bounded retry: a user waiting on "Creating your image…" should hear within seconds that the
# broker is down, not after Celery's default minutes of reconnecting.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def publish(task: str, *args: object) -> None:
    current_app.send_task(task, args, retry=True, retry_policy=PUBLISH_RETRY)


def runs_here() -> bool:
    """Whether jobs run in this process (no Celery broker configured)."""
    return not settings.CELERY_BROKER_URL


async def submit(application: Application, batch: list[Generation], sending_status: "asyncio.Future[Message]") -> None:
    """Run the job of these Generations (one request's images); its status message is on its way."""
    if not runs_here():  # the worker learns the status message by its id
        try:
            status_message_id = (await sending_status).message_id
        except Forbidden as exc:
            await jobs.blocked(batch, exc)
            return
        except TelegramError:
            status_message_id = None
        await sync_to_async(publish)(GENERATION_TASK, [generation.pk for generation in batch], status_message_id)
        return
    # Application.stop() awaits tasks made by create_task, so a shutdown lets running jobs finish.
    application.create_task(
        jobs.run_generation(
            batch,
            bot=application.bot,
            provider=application.bot_data["provider"],
            sending_status=sending_status,
        ),
        name=f"generation-{batch[0].pk}",
    )
