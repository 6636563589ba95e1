from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from telegram import Update

from botcore import memory
from botcore.telegram.application import build_application


class Command(BaseCommand):
    help = "Run the Telegram bot with long polling."

    def handle(self, *args, **options):
        for name in ("TELEGRAM_BOT_TOKEN", *(settings.PROVIDER_KEYS[p] for p in settings.IMAGE_PROVIDERS)):
            if not getattr(settings, name):
                raise CommandError(f"{name} is not set; add it to .env or the environment")
        memory.return_freed_images_to_the_os()
        self.stdout.write("NanoBot is polling Telegram for updates (Ctrl+C stops it).")
        build_application().run_polling(allowed_updates=Update.ALL_TYPES)
