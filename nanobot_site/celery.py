import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanobot_site.settings")

app = Celery("nanobot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_housekeeping(sender, **kwargs):
    """celery beat sends the housekeeping chores (botcore/telegram/housekeeping.py) as often as each says."""
    from botcore.tasks import beat_schedule  # Django is set up by now: Celery's fixup did it before the tasks

    sender.conf.beat_schedule = beat_schedule()
