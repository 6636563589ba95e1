"""The environment for a bot or worker process of our own, talking to the fakes and this database."""

import os
import socket

from django.conf import settings
from django.db import connections

BOT_TOKEN = "123456:TEST-token"
GEMINI_KEY = "test-gemini-key"


def free_port():
    """A port on 127.0.0.1 that nothing listens on (for a server to start on, or to find no one there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url():
    db = connections["default"].settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


def process_env(tg, gemini, **extra):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nanobot_site.settings",
        "NANOBOT_ENV_FILE": "",
        "SECRET_KEY": "test-process",
        "DATABASE_URL": database_url(),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_BASE_URL": tg.base_url,
        "TELEGRAM_BASE_FILE_URL": tg.base_file_url,
        "GEMINI_API_KEY": GEMINI_KEY,
        "GEMINI_BASE_URL": gemini.base_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),  # results kept where this process keeps (and cleans) them
        **{name: str(value) for name, value in extra.items()},
    }
