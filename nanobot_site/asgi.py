import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from servestatic import ServeStaticASGI

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanobot_site.settings")
django_application = get_asgi_application()

from botcore.views import webhook_first  # noqa: E402  (once Django is set up)

# /static/ as collected into STATIC_ROOT, served before Django sees the request, so a container needs no
# proxy for the dashboard's stylesheet; a proxy in front may serve them itself instead (docs/deploy.md).
# Telegram's webhook skips Django's middleware too (botcore/views.py, webhook_first).
application = ServeStaticASGI(webhook_first(django_application), root=settings.STATIC_ROOT, prefix=settings.STATIC_URL)
