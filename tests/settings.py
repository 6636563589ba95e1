"""Settings for the test suite: the project's own, minus anything from a developer's .env."""

import os
import tempfile
from pathlib import Path

os.environ["NANOBOT_ENV_FILE"] = ""
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")

from nanobot_site.settings import *  # noqa: E402,F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not shared-cache memory: the bot's threads and the quota race tests need
    # real SQLite locking, which shared-cache in-memory databases don't give.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"nanobot-tests-{os.getpid()}.sqlite3")
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["ENGINE"] = "tests.postgresql"  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TELEGRAM_BOT_TOKEN = ""
GEMINI_API_KEY = ""
CELERY_BROKER_URL = ""
ADMIN_TELEGRAM_IDS = []
PROVIDER_RETRY_BASE_SECONDS = 0.01
PROVIDER_TIMEOUT_SECONDS = 5.0
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="nanobot-test-media-"))
ALBUM_WAIT_SECONDS = 0.3
SEND_RETRY_SECONDS = 0.6
