# NanoBot's image: the web server (dashboard, API, webhook), the Celery worker and the polling bot all run
# from it (compose.yaml picks the command). Slim, the app owned by root and run as an unprivileged user.

FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
ENV PATH=/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
WORKDIR /app
COPY requirements-runtime.txt .
RUN pip install -r requirements-runtime.txt
COPY . .
# Settings refuse to load without a SECRET_KEY; these two commands need none of the real ones.
RUN SECRET_KEY=image-build NANOBOT_ENV_FILE= python manage.py compilemessages \
 && SECRET_KEY=image-build NANOBOT_ENV_FILE= python manage.py collectstatic --noinput

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 NANOBOT_ENV_FILE= MEDIA_ROOT=/app/media
RUN useradd --system --uid 10001 --no-create-home --home-dir /app nanobot
COPY --from=build /venv /venv
COPY --from=build /app /app
# Kept results (the bot's and the workers' alike) are the only thing written: a volume in compose.yaml.
RUN mkdir /app/media && chown nanobot /app/media
WORKDIR /app
USER nanobot
EXPOSE 8000
CMD ["uvicorn", "nanobot_site.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
