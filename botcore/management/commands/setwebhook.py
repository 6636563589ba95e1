import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from telegram import Bot, Update
from telegram.error import TelegramError

from botcore.telegram.transport import bot_request


class Command(BaseCommand):
    help = "Tell Telegram to deliver updates to this deployment's webhook (instead of runbot's polling)."

    def add_arguments(self, parser):
        parser.add_argument("url", help="public HTTPS URL of /telegram/webhook/")

    def handle(self, *args, url, **options):
        for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"):
            if not getattr(settings, name):
                raise CommandError(f"{name} is not set; add it to .env or the environment")
        try:
            asyncio.run(self.register(url))
        except TelegramError as exc:
            raise CommandError(f"Telegram refused the webhook: {exc}") from None
        self.stdout.write(f"Telegram now sends updates to {url}")

    async def register(self, url):
        bot = Bot(settings.TELEGRAM_BOT_TOKEN, base_url=settings.TELEGRAM_BASE_URL, request=bot_request(pool_size=1))
        async with bot:
            await bot.set_webhook(url, secret_token=settings.TELEGRAM_WEBHOOK_SECRET, allowed_updates=Update.ALL_TYPES)
