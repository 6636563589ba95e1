import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanobot_site.settings")

app = Celery("nanobot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
