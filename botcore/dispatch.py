"""Where a generation job runs: a Celery worker when a broker is configured, else this process."""

from asgiref.sync import sync_to_async
from django.conf import settings

from . import jobs


async def submit(application, generation_id, status_message_id):
    if settings.CELERY_BROKER_URL:
        from .tasks import run_generation_task

        await sync_to_async(run_generation_task.delay)(generation_id, status_message_id)
        return
    # Application.stop() awaits tasks made by create_task, so a shutdown lets running jobs finish.
    application.create_task(
        jobs.run_generation(
            generation_id,
            bot=application.bot,
            provider=application.bot_data["provider"],
            status_message_id=status_message_id,
        ),
        name=f"generation-{generation_id}",
    )
