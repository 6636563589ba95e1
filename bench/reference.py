"""The reference bot of the burst scenario: the least any bot can do per image on this machine.

python-telegram-bot with concurrent updates; for each text, one httpx call to Gemini's
`generateContent` (the request NanoBot makes by default: 2K, 1:1), the photo bytes sent back in reply
in the next free slot of 30 a second (a 429 that comes anyway is waited out and tried again). No
database, no status message, no quota, nothing else; it imports nothing of NanoBot's. Run by
bench/harness.py as `python -m bench.reference`.
"""

import asyncio
import base64
import os
import sys

import httpx
from telegram.error import RetryAfter
from telegram.ext import ApplicationBuilder, BaseRateLimiter, MessageHandler, filters

from .counters import report_on_sigusr1

MODEL = "gemini-3-pro-image-preview"


class Paced(BaseRateLimiter):
    """Photos go out one every 1/30 s; nothing else is held back."""

    def __init__(self, per_second=30, retries=3):
        self.gap, self.retries, self.next_slot = 1 / per_second, retries, 0.0

    async def initialize(self):
        pass

    async def shutdown(self):
        pass

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        if endpoint != "sendPhoto":
            return await callback(*args, **kwargs)
        for attempt in range(self.retries + 1):
            now = asyncio.get_running_loop().time()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.gap
            await asyncio.sleep(slot - now)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == self.retries:
                    raise
                wait = exc.retry_after  # seconds, or a timedelta with PTB_TIMEDELTA set
                await asyncio.sleep(wait.total_seconds() if hasattr(wait, "total_seconds") else wait)


async def reply_with_image(update, context):
    response = await context.bot_data["gemini"].post(
        f"{os.environ['GEMINI_BASE_URL'].rstrip('/')}/v1beta/models/{MODEL}:generateContent",
        headers={"x-goog-api-key": os.environ["GEMINI_API_KEY"]},
        json={
            "contents": [{"role": "user", "parts": [{"text": update.message.text}]}],
            "generationConfig": {
                "responseModalities": ["TEXT", "IMAGE"],
                "imageConfig": {"imageSize": "2K", "aspectRatio": "1:1"},
            },
        },
    )
    parts = response.json()["candidates"][0]["content"]["parts"]
    image = next(base64.b64decode(part["inlineData"]["data"]) for part in parts if "inlineData" in part)
    await update.message.reply_photo(image)


async def open_client(application):
    application.bot_data["gemini"] = httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=None))


async def close_client(application):
    await application.bot_data["gemini"].aclose()


def main():
    report_on_sigusr1()
    application = (
        ApplicationBuilder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_BASE_URL"])
        .concurrent_updates(True)
        .rate_limiter(Paced())
        .connection_pool_size(256)
        .post_init(open_client)
        .post_shutdown(close_client)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, reply_with_image))
    application.run_polling()


if __name__ == "__main__":
    sys.exit(main())
