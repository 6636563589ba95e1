"""Settings for the benchmark's own process: the project's, minus a developer's .env."""

import os
import tempfile
from pathlib import Path

os.environ["NANOBOT_ENV_FILE"] = ""
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")

from nanobot_site.settings import *  # noqa: E402,F403

# A database of its own, never the test suite's; on SQLite a file the bot process can open too.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"nanobot-bench-{os.getpid()}.sqlite3")}  # noqa: F405
else:  # named after the database the URL names: `nanobot` -> `nanobot_bench`, as before
    DATABASES["default"]["TEST"] = {"NAME": f"{DATABASES['default']['NAME']}_bench"}  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="nanobot-bench-media-"))
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405  (the dashboard scenario uses the test client)
