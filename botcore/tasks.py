import asyncio

from celery import shared_task

from . import jobs


@shared_task(acks_late=True, ignore_result=True)
def run_generation_task(generation_id, status_message_id=None):
    asyncio.run(jobs.run_generation_standalone(generation_id, status_message_id))
