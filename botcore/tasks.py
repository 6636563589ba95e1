import asyncio

from celery import shared_task
from celery.signals import worker_process_init, worker_ready

from . import broadcasts, heartbeats, memory
from .models import Heartbeat
from .telegram import jobs
from .telegram.dispatch import BROADCAST_TASK, GENERATION_TASK

worker_process_init.connect(lambda **kwargs: memory.return_freed_images_to_the_os(), weak=False)
# The worker's main process beats for the worker: it lives as long as the worker does.
worker_ready.connect(lambda **kwargs: heartbeats.beat_in_background(Heartbeat.Kind.WORKER), weak=False)


@shared_task(name=GENERATION_TASK, acks_late=True, ignore_result=True)
def run_generation_task(generation_ids, status_message_id=None):
    if isinstance(generation_ids, int):  # a task queued before batches existed
        generation_ids = [generation_ids]
    asyncio.run(jobs.run_generation_standalone(generation_ids, status_message_id))


@shared_task(name=BROADCAST_TASK, acks_late=True, ignore_result=True)
def send_broadcast_task(broadcast_id):
    asyncio.run(broadcasts.send(broadcast_id))
