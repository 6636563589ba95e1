"""Settings come from the environment and an optional .env file (see .env.example).

Every value is parsed strictly: missing required variables and malformed ones stop start-up
with one line naming each, all of them at once (manage.py prints them without a traceback).
"""

import json
import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = os.environ.get("NANOBOT_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    environ.Env.read_env(_env_file)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# What is wrong with the configuration, raised together at the end of this file so an operator
# fixes everything in one go rather than one variable per restart.
_problems = []


def _problem(message):
    _problems.append(message)


def _setting(name, cast=str, default=environ.Env.NOTSET):
    if os.environ.get(name, "") == "":  # set but empty counts as unset, like a blank line in .env
        if default is environ.Env.NOTSET:
            _problem(f"{name} is not set; add it to .env or the environment")
            return ""
        return default
    try:
        return env.get_value(name, cast=cast)
    except (TypeError, ValueError) as exc:
        _problem(f"{name} has an invalid value: {exc}")
        return "" if default is environ.Env.NOTSET else default


def envbool(name, default):
    value = str(_setting(name, default=str(default))).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    _problem(f"{name} must be true or false, not {value!r}")
    return default


def envint(name, default):
    return _setting(name, cast=int, default=default)


def envfloat(name, default):
    return _setting(name, cast=float, default=default)


def envstr(name, default=environ.Env.NOTSET):
    return _setting(name, default=default)


def envlist(name, default):
    return [item.strip() for item in envstr(name, ",".join(default)).split(",") if item.strip()]


DEBUG = envbool("DEBUG", False)
SECRET_KEY = envstr("SECRET_KEY", "")
if not SECRET_KEY:
    _problem("SECRET_KEY is not set; add it to .env or the environment")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # serves the API docs' assets itself: no CDN
    "axes",
    "accounts",
    "botcore",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a lockout into the sign-in page saying so
]

ROOT_URLCONF = "nanobot_site.urls"
WSGI_APPLICATION = "nanobot_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                # LANGUAGE_CODE for <html lang>: it picks Simplified or Traditional glyphs for the Han characters
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = envstr("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
if _database_url.split(":", 1)[0] not in environ.Env.DB_SCHEMES:
    _problem("DATABASE_URL must start with sqlite://, postgres:// or another supported scheme")
    _database_url = "sqlite://"
DATABASES = {"default": env.db_url_config(_database_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take SQLite's write lock up front, so concurrent quota
    # reservations queue up instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A cache server (e.g. redis://127.0.0.1:6379/1) is shared by the bot, workers and web processes:
# keyword changes reach the bot at once, admin alerts are throttled once, report figures made once.
# The default, each process's own memory, is right for one bot and one web process.
_cache_url = envstr("CACHE_URL", "locmemcache://")
if _cache_url.split(":", 1)[0] not in environ.Env.CACHE_SCHEMES:
    _problem("CACHE_URL must start with redis://, locmemcache:// or another supported scheme")
    _cache_url = "locmemcache://"
CACHES = {"default": env.cache_url_config(_cache_url)}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A cache server that is down or unreachable slows the bot down rather than stopping it.
    CACHES["default"]["BACKEND"] = "nanobot_site.cache.RedisCache"
    CACHES["default"]["OPTIONS"] = {
        "socket_connect_timeout": 2,
        "socket_timeout": 2,
        **CACHES["default"].get("OPTIONS", {}),  # the URL's own win
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"  # else Django's admin says "Logged out" in its own look, with a link to the admin

# Sign-in throttling (django-axes), for the dashboard's and the admin's login alike. A username is
# locked only from the address that failed, so guessing from one place can't lock staff out elsewhere.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no banner on every manage.py command; lockouts are still logged
AXES_LOCKOUT_CALLABLE = "nanobot_site.lockout.locked_out"
# The client's address is the connection's, unless a reverse proxy is trusted to put it in this header
# (e.g. X-Real-IP), overwriting whatever the client sent.
_client_ip_header = envstr("CLIENT_IP_HEADER", "")
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_" + _client_ip_header.upper().replace("-", "_")] if _client_ip_header else ["REMOTE_ADDR"]
)

# HTTPS. The defaults suit http://127.0.0.1:8000; docs/deploy.md has the production values.
# Behind a proxy that terminates TLS, SECURE_PROXY_SSL_HEADER names the header it sets to "https".
_proxy_ssl_header = envstr("SECURE_PROXY_SSL_HEADER", "")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # probes and scrapers ask over plain HTTP from inside the network
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)

# Content security policy (django-csp): scripts and styles only from our own static files, never inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # the API docs' icons are data: URLs
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LANGUAGE_CODE = "en"
# Simplified before Traditional: a browser asking for plain "zh" gets the first zh-* listed, as the bot does.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文"), ("zh-hant", "繁體中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = envstr("TIME_ZONE", "UTC")  # the quota day ends at midnight here
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where collectstatic puts them; the ASGI application (asgi.py) serves them from there.
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# Telegram. The token is appended to both base URLs, as python-telegram-bot does, so a
# self-hosted Bot API server, a relay or a test fake can stand in for api.telegram.org.
TELEGRAM_BOT_TOKEN = envstr("TELEGRAM_BOT_TOKEN", "")
TELEGRAM_BASE_URL = envstr("TELEGRAM_BASE_URL", "https://api.telegram.org/bot")
TELEGRAM_BASE_FILE_URL = envstr("TELEGRAM_BASE_FILE_URL", "https://api.telegram.org/file/bot")
# The webhook (POST /telegram/webhook/) is on when this is set; Telegram sends it back in the
# X-Telegram-Bot-Api-Secret-Token header of every update (`manage.py setwebhook` registers it).
TELEGRAM_WEBHOOK_SECRET = envstr("TELEGRAM_WEBHOOK_SECRET", "")
if TELEGRAM_WEBHOOK_SECRET and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", TELEGRAM_WEBHOOK_SECRET):
    _problem("TELEGRAM_WEBHOOK_SECRET must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
try:
    ADMIN_TELEGRAM_IDS = [int(i) for i in envlist("ADMIN_TELEGRAM_IDS", [])]
except ValueError:
    _problem("ADMIN_TELEGRAM_IDS must be Telegram user ids separated by commas")

# Image providers, tried in this order: the next one serves when one is down. The names are those of
# botcore.providers.registry (the system check botcore.E002 keeps them in step), each with its key's setting.
PROVIDER_KEYS = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_IMAGES_API_KEY"}
IMAGE_PROVIDERS = envlist("IMAGE_PROVIDERS", ["gemini"])
if not IMAGE_PROVIDERS or set(IMAGE_PROVIDERS) - set(PROVIDER_KEYS) or len(set(IMAGE_PROVIDERS)) < len(IMAGE_PROVIDERS):
    _problem(f"IMAGE_PROVIDERS must list {' and/or '.join(PROVIDER_KEYS)}, each once, e.g. {','.join(PROVIDER_KEYS)}")
# A provider failing this many times in a row is skipped for PROVIDER_BREAKER_SECONDS.
PROVIDER_BREAKER_FAILURES = envint("PROVIDER_BREAKER_FAILURES", 3)
PROVIDER_BREAKER_SECONDS = envfloat("PROVIDER_BREAKER_SECONDS", 60.0)
GEMINI_API_KEY = envstr("GEMINI_API_KEY", "")
GEMINI_BASE_URL = envstr("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com").rstrip("/")
IMAGE_MODEL = envstr("IMAGE_MODEL", "gemini-3-pro-image-preview")
# An OpenAI-compatible images API (/v1/images/generations and /edits), e.g. a relay.
OPENAI_IMAGES_BASE_URL = envstr("OPENAI_IMAGES_BASE_URL", "https://api.openai.com").rstrip("/")
OPENAI_IMAGES_API_KEY = envstr("OPENAI_IMAGES_API_KEY", "")
OPENAI_IMAGES_MODEL = envstr("OPENAI_IMAGES_MODEL", "gemini-3-pro-image-preview")
PROVIDER_TIMEOUT_SECONDS = envfloat("PROVIDER_TIMEOUT_SECONDS", 180.0)
PROVIDER_MAX_RETRIES = envint("PROVIDER_MAX_RETRIES", 2)
PROVIDER_RETRY_BASE_SECONDS = envfloat("PROVIDER_RETRY_BASE_SECONDS", 2.0)
# Image calls at once in a bot process (botcore/upstream.py); more wait in a queue whose users see their
# place, told again every QUEUE_UPDATE_SECONDS while it moves. Keep it within the image API's own limits.
UPSTREAM_CONCURRENCY = envint("UPSTREAM_CONCURRENCY", 100)
if isinstance(UPSTREAM_CONCURRENCY, int) and UPSTREAM_CONCURRENCY < 1:
    _problem("UPSTREAM_CONCURRENCY must be 1 or more")
QUEUE_UPDATE_SECONDS = envfloat("QUEUE_UPDATE_SECONDS", 5.0)


def _prices(name: str, table: dict[str, Any]) -> dict[str, dict[str, dict[str, Decimal]]]:
    """A {provider: {model: {key: price}}} table, from the environment's JSON if set, in Decimals."""
    try:
        if envstr(name, ""):
            table = json.loads(envstr(name))
        return {
            provider: {model: {key: Decimal(str(price)) for key, price in row.items()} for model, row in models.items()}
            for provider, models in table.items()
        }
    except (ValueError, AttributeError, ArithmeticError) as exc:
        _problem(f'{name} must be JSON like {{"provider": {{"model": {{"2K": 0.134}}}}}}: {exc}')
        return {}


# USD per delivered image, by provider, model and resolution, for answers that don't say what
# they used (Google's list prices for Gemini 3 Pro Image: 1K and 2K cost the same 1,120 output
# tokens, 4K costs 2,000; OpenAI's GPT image models make one size whatever the resolution, at
# their dearest per-image price: high quality, portrait or landscape). IMAGE_PRICES in the
# environment (JSON of the same shape) replaces the table; every configured model needs one.
IMAGE_PRICES = _prices(
    "IMAGE_PRICES",
    {
        "gemini": {"gemini-3-pro-image-preview": {"1K": "0.134", "2K": "0.134", "4K": "0.24"}},
        "openai": {
            "gemini-3-pro-image-preview": {"1K": "0.134", "2K": "0.134", "4K": "0.24"},
            "gpt-image-1": {"1K": "0.25", "2K": "0.25", "4K": "0.25"},
            "gpt-image-1.5": {"1K": "0.20", "2K": "0.20", "4K": "0.20"},
            "gpt-image-1-mini": {"1K": "0.052", "2K": "0.052", "4K": "0.052"},
        },
    },
)
# USD per million tokens, by provider, model and kind of token: an answer that reports its usage
# (Gemini's usageMetadata, OpenAI's usage) costs what it used. A relay bills per image, so its
# models have none. Google's and OpenAI's list prices; IMAGE_TOKEN_PRICES (JSON) replaces them.
IMAGE_TOKEN_PRICES = _prices(
    "IMAGE_TOKEN_PRICES",
    {
        "gemini": {
            "gemini-3-pro-image-preview": {
                "text_input": "2",
                "image_input": "2",
                "text_output": "12",
                "image_output": "120",
            }
        },
        "openai": {
            "gpt-image-1": {"text_input": "5", "image_input": "10", "text_output": "0", "image_output": "40"},
            "gpt-image-1.5": {"text_input": "5", "image_input": "8", "text_output": "10", "image_output": "32"},
            "gpt-image-1-mini": {"text_input": "2", "image_input": "2.5", "text_output": "0", "image_output": "8"},
        },
    },
)


# What the bot keeps and how it answers.
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"
# Original result files are kept this long, for the "Original file" button and the dashboard.
RESULT_KEEP_DAYS = envint("RESULT_KEEP_DAYS", 30)
# The same request within this time is answered with the image already made (0 turns the cache off).
RESULT_CACHE_SECONDS = envint("RESULT_CACHE_SECONDS", 24 * 3600)
# Album parts arrive as separate updates; wait this long after the last one before starting.
ALBUM_WAIT_SECONDS = envfloat("ALBUM_WAIT_SECONDS", 1.5)
# A result Telegram won't take is sent again through its passing faults (5xx, network, 429) for this long.
SEND_RETRY_SECONDS = envfloat("SEND_RETRY_SECONDS", 60.0)
# Telegram's send limits, kept a little under by the bot (botcore/telegram/outbound.py): messages a second
# overall (raise it only with Telegram's paid broadcasts), a second in one private chat, a minute in a group.
TELEGRAM_MESSAGES_PER_SECOND = envfloat("TELEGRAM_MESSAGES_PER_SECOND", 30.0)
TELEGRAM_CHAT_MESSAGES_PER_SECOND = envfloat("TELEGRAM_CHAT_MESSAGES_PER_SECOND", 1.0)
TELEGRAM_GROUP_MESSAGES_PER_MINUTE = envfloat("TELEGRAM_GROUP_MESSAGES_PER_MINUTE", 20.0)
_limits = (TELEGRAM_MESSAGES_PER_SECOND, TELEGRAM_CHAT_MESSAGES_PER_SECOND, TELEGRAM_GROUP_MESSAGES_PER_MINUTE)
if any(isinstance(limit, float) and limit <= 0 for limit in _limits):
    _problem("TELEGRAM_MESSAGES_PER_SECOND, _CHAT_MESSAGES_PER_SECOND and _GROUP_MESSAGES_PER_MINUTE must be above 0")
# photo: a photo only (recompressed when Telegram requires); document: the original file only;
# both: the photo, plus the original file whenever the photo isn't it.
DELIVERY_MODE = envstr("DELIVERY_MODE", "both")
if DELIVERY_MODE not in ("photo", "document", "both"):
    _problem("DELIVERY_MODE must be photo, document or both")


# Spend limits (USD; empty: none), per day and per month in TIME_ZONE: once the logged cost with the calls in
# flight would pass one, new paid images are refused until the period renews (botcore/spending.py).
def _usd(name):
    try:
        return Decimal(envstr(name, "0")) or None
    except ArithmeticError:
        _problem(f"{name} must be a number of US dollars, e.g. 500")
        return None


DAILY_BUDGET_USD = _usd("DAILY_BUDGET_USD")
MONTHLY_BUDGET_USD = _usd("MONTHLY_BUDGET_USD")

# Credit packs sold for Telegram Stars (accounts/credits.py, botcore/telegram/payments.py). Credits bought
# expire this many days after the purchase (0: never); staff grants follow the same rule.
CREDIT_EXPIRY_DAYS = envint("CREDIT_EXPIRY_DAYS", 365)
if isinstance(CREDIT_EXPIRY_DAYS, int) and CREDIT_EXPIRY_DAYS < 0:
    _problem("CREDIT_EXPIRY_DAYS must be 0 (never) or more")
# What a Star brings in, in USD, for revenue and margin in the dashboard: an estimate (Telegram pays out
# about $0.013 a Star to developers; set what you are paid).
try:
    STARS_USD_RATE = Decimal(envstr("STARS_USD_RATE", "0.013"))
except ArithmeticError:
    _problem("STARS_USD_RATE must be a number of US dollars, e.g. 0.013")
    STARS_USD_RATE = Decimal(0)
# Shown by /paysupport and /terms, which Telegram requires of bots selling digital goods: who to contact
# about a payment (e.g. @your_support or an e-mail address), and a link to the full terms, if any.
PAYMENT_SUPPORT_CONTACT = envstr("PAYMENT_SUPPORT_CONTACT", "")
TERMS_URL = envstr("TERMS_URL", "")

# Generations still queued this long (a job lost with its Celery message) give their quota back.
STALE_GENERATION_SECONDS = envint("STALE_GENERATION_SECONDS", 900)
# A running job is leased to its process, which renews the lease every few seconds; once a lease has
# run out (the process died) the job is failed, its quota released and its user told.
JOB_LEASE_SECONDS = envint("JOB_LEASE_SECONDS", 30)
if isinstance(JOB_LEASE_SECONDS, int) and JOB_LEASE_SECONDS < 2:
    _problem("JOB_LEASE_SECONDS must be 2 or more: a lease is renewed six times in its length")

# Prometheus (GET /metrics, botcore/metrics.py, docs/deploy.md): scraped with this token as a bearer token;
# empty, there is no such page (404).
METRICS_TOKEN = envstr("METRICS_TOKEN", "")
if METRICS_TOKEN and not re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,256}", METRICS_TOKEN):
    _problem("METRICS_TOKEN must be 16-256 characters of A-Z, a-z, 0-9 and . _ ~ + / = -")
# prometheus-client's multiprocess mode: every process of this machine (web workers, Celery workers, the
# bot) writes its own figures to files here and a scrape sums them. Empty: each process keeps its own, and
# /metrics shows the serving process's. Empty it when the machine's processes all start, not as each does.
METRICS_DIR = envstr("PROMETHEUS_MULTIPROC_DIR", "")
if METRICS_DIR and not Path(METRICS_DIR).is_dir():
    _problem("PROMETHEUS_MULTIPROC_DIR must name an existing directory")

# Jobs run in a Celery worker when a broker is configured, else inside the bot process.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "")
CELERY_TASK_DEFAULT_QUEUE = envstr("CELERY_QUEUE", "nanobot")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1


# The longest a generation can legitimately take in a worker, in seconds. With the defaults:
#      31  a dead worker's lease running out before its job is taken over           JOB_LEASE_SECONDS + 1
#   + 546  image calls: each provider once, the last one retried, with backoff     (1 + 2) x 180 + 2 + 4
#          (twice or four times that when UPSTREAM_CONCURRENCY < 4: a batch's images take turns)
#   +  60  Telegram calls before the image: the input photos, the status message
#   + 380  the upload, photo and original file, each connect 10 + write 120 + read 30, then retried
#          through Telegram's passing faults for SEND_RETRY_SECONDS                 2 x 160 + 60
#   = 1017 s, about 17 minutes.
def _longest_job():
    calls = len(IMAGE_PROVIDERS) + PROVIDER_MAX_RETRIES
    backoff = sum(min(30.0, PROVIDER_RETRY_BASE_SECONDS * 2**n) for n in range(PROVIDER_MAX_RETRIES))
    turns = -(-4 // min(4, max(1, UPSTREAM_CONCURRENCY)))  # generations.MAX_BATCH images, so many at once
    upload = 2 * (10 + 120 + 30) + SEND_RETRY_SECONDS  # botcore/telegram/transport.py's timeouts
    return JOB_LEASE_SECONDS + 1 + turns * (calls * PROVIDER_TIMEOUT_SECONDS + backoff) + 60 + upload


# A job still running at this soft limit is stopped: failed, its user told, its quota released (botcore/tasks.py).
# The hard limit, JOB_STOP_SECONDS later (room for the two Telegram calls that tell the user), kills the worker's
# process; the stale-job sweep then tells the user. Celery's prefork pool (the default) enforces both.
JOB_TIME_LIMIT_SECONDS = envfloat("JOB_TIME_LIMIT_SECONDS", _longest_job())
if isinstance(JOB_TIME_LIMIT_SECONDS, float) and JOB_TIME_LIMIT_SECONDS <= 0:
    _problem("JOB_TIME_LIMIT_SECONDS must be above 0")
JOB_STOP_SECONDS = 120
# Redis hands an unacknowledged task (acks_late: acknowledged when done) to another worker after this long: it must
# outlast the longest task, or a job still running would be brought twice (harmless, see jobs.run_generation's
# takeover, but it holds a worker until the first one's lease ends). Twice the hard limit, for the time a task
# also waits in a worker's prefetch or for a retry's countdown. Broadcasts may run longer; a second delivery of one
# finds it started and returns. With RabbitMQ, the broker's consumer_timeout (30 minutes by default) must likewise
# be longer than the hard limit (JOB_TIME_LIMIT_SECONDS + JOB_STOP_SECONDS), or it closes the worker's channel.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(2 * (JOB_TIME_LIMIT_SECONDS + JOB_STOP_SECONDS))}
# A worker started before its broker waits for it, as it does when the connection drops later.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Housekeeping (botcore/telegram/housekeeping.py: the stale-job sweep, forgetting old results, update ids and silent
# processes, day summaries): its most frequent chores run this often, the others every so many of these. Done by
# celery beat when a broker is configured, else in the bot's own loop.
HOUSEKEEPING_SECONDS = envfloat("HOUSEKEEPING_SECONDS", 60.0)
if isinstance(HOUSEKEEPING_SECONDS, float) and HOUSEKEEPING_SECONDS <= 0:
    _problem("HOUSEKEEPING_SECONDS must be above 0")

# text: one line each for people; json: one JSON object each for a log collector, with the generation
# id on every line a job logs.
LOG_FORMAT = envstr("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    _problem("LOG_FORMAT must be text or json")
    LOG_FORMAT = "text"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"job": {"()": "botcore.logs.JobFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["job"]}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    # httpx logs every request URL at INFO, and Bot API URLs carry the bot token.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# Keep this last: every setting above has been read, so every problem is known.
if _problems:
    raise ImproperlyConfigured("\n".join(_problems))
