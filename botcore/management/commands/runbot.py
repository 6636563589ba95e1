import asyncio
import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from telegram import Update
from telegram.error import InvalidToken, NetworkError, RetryAfter, TelegramError

from botcore import memory
from botcore.telegram.application import build_application

log = logging.getLogger(__name__)

# A bot started with the network or Telegram still coming up waits about a minute for it.
CONNECT_DELAYS = (1, 2, 4, 8, 15, 30)


class Command(BaseCommand):
    help = "Run the Telegram bot with long polling."

    def handle(self, *args, **options):
        names = ("TELEGRAM_BOT_TOKEN", *(settings.PROVIDER_KEYS[p] for p in settings.IMAGE_PROVIDERS))
        if missing := [name for name in names if not getattr(settings, name)]:
            raise CommandError(_not_set(missing))
        memory.return_freed_images_to_the_os()
        application = build_application()
        # The runner sets its loop as the current one, which run_polling() then uses: the connection
        # made here is the bot's. Ctrl+C while waiting cancels connect() cleanly.
        runner = asyncio.Runner()
        try:
            runner.run(connect(application.bot))
        except BaseException as exc:
            runner.run(application.bot.shutdown())
            runner.close()
            if isinstance(exc, KeyboardInterrupt):
                return
            raise
        self.stdout.write("NanoBot is polling Telegram for updates (Ctrl+C stops it).")
        application.run_polling(allowed_updates=Update.ALL_TYPES)


def _not_set(names):
    if len(names) == 1:
        return f"{names[0]} is not set; add it to .env or the environment"
    return f"{', '.join(names[:-1])} and {names[-1]} are not set; add them to .env or the environment"


async def connect(bot):
    """Sign in to the Bot API (getMe), waiting out a network or Telegram that isn't up yet.

    Errors become one line without the token: PTB's own message for a rejected token quotes it."""
    started = time.monotonic()
    for delay in (*CONNECT_DELAYS, None):
        try:
            await bot.initialize()
            return
        except InvalidToken:
            raise CommandError(
                "Telegram rejected TELEGRAM_BOT_TOKEN; copy the bot's token from @BotFather into .env"
            ) from None
        except (NetworkError, RetryAfter) as exc:
            if delay is None:
                raise CommandError(
                    f"Telegram could not be reached for {time.monotonic() - started:.0f} s ({exc}); "
                    "check the network and TELEGRAM_BASE_URL"
                ) from None
            log.warning("Telegram could not be reached (%s); trying again in %d s", exc, delay)
            await asyncio.sleep(delay)
        except TelegramError as exc:
            raise CommandError(f"Telegram refused to start the bot: {exc}") from None
