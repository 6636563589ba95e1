"""The one place the bot's handlers are registered; used by `runbot` (polling) and by tests."""

import logging
from contextlib import AsyncExitStack

from asgiref.sync import sync_to_async
from django.conf import settings
from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from botcore import heartbeats
from botcore.models import Heartbeat
from botcore.periodic import repeating
from botcore.providers import open_provider

from . import handlers, housekeeping, jobs, outbound, payments, updates
from .transport import bot_request

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("generate", "Create an image at 2K"),
    BotCommand("hd", "Create an image at 4K"),
    BotCommand("batch", "2 to 4 images of one description"),
    BotCommand("settings", "Default size and aspect ratio"),
    BotCommand("quota", "Images left today"),
    BotCommand("balance", "Free images and credits"),
    BotCommand("buy", "Buy images with Telegram Stars"),
    BotCommand("cancel", "Stop the images being made"),
    BotCommand("help", "How to use the bot"),
    BotCommand("paysupport", "Help with a payment"),
    BotCommand("terms", "Terms of purchase"),
]


async def _post_init(application):
    application.bot_data["resources"] = resources = AsyncExitStack()
    application.bot_data["provider"] = await resources.enter_async_context(open_provider())
    await resources.enter_async_context(jobs.leases_held())
    beat = sync_to_async(heartbeats.beat_safely)
    await resources.enter_async_context(repeating(lambda: beat(Heartbeat.Kind.BOT), every=heartbeats.EVERY_SECONDS))
    # Here without a broker, else in celery beat. Plain tasks, not application.create_task: Application.stop()
    # would wait for them forever.
    await resources.enter_async_context(housekeeping.done_here(application.bot))
    try:
        await application.bot.set_my_commands(COMMANDS)
    except TelegramError as exc:  # the menu is a convenience: the bot serves without it
        log.warning("command menu not set: %s", exc)


async def _post_shutdown(application):
    resources = application.bot_data.pop("resources", None)
    if resources is not None:
        await resources.aclose()


def build_application():
    bot = updates.Bot(
        settings.TELEGRAM_BOT_TOKEN,
        base_url=settings.TELEGRAM_BASE_URL,
        base_file_url=settings.TELEGRAM_BASE_FILE_URL,
        request=bot_request(),
        get_updates_request=bot_request(pool_size=1),
        rate_limiter=outbound.for_settings(),
    )
    application = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(True)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    private_text = filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE
    images = filters.PHOTO | filters.Document.ALL  # non-image files get told what we accept
    application.add_handler(TypeHandler(Update, updates.gate), group=-1)
    application.add_handlers(
        [
            CommandHandler("start", handlers.start),
            CommandHandler("help", handlers.help_command),
            CommandHandler("quota", handlers.quota_command),
            CommandHandler("cancel", handlers.cancel_command),
            CommandHandler("generate", handlers.generate_command),
            CommandHandler("hd", handlers.hd_command),
            CommandHandler("batch", handlers.batch_command),
            CommandHandler("settings", handlers.settings_command),
            CommandHandler("buy", payments.buy_command),
            CommandHandler("balance", payments.balance_command),
            CommandHandler("paysupport", payments.paysupport_command),
            CommandHandler("terms", payments.terms_command),
            PreCheckoutQueryHandler(payments.pre_checkout),
            MessageHandler(filters.SUCCESSFUL_PAYMENT, payments.successful_payment),
            CallbackQueryHandler(handlers.button_pressed, pattern=r"^r:"),
            CallbackQueryHandler(handlers.settings_pressed, pattern=r"^s:"),
            CallbackQueryHandler(payments.pack_pressed, pattern=rf"^{payments.PACK_PREFIX}:"),
            CallbackQueryHandler(handlers.unknown_button),
            MessageHandler(private_text, handlers.text_message),
            MessageHandler(images & filters.ChatType.PRIVATE, handlers.image_message),
            MessageHandler(filters.ChatType.PRIVATE & ~filters.StatusUpdate.ALL, handlers.unsupported),
        ]
    )
    application.add_error_handler(handlers.on_error)
    return application


async def start(application):
    """Start the bot as run_polling() does, minus polling: for the webhook view and tests."""
    await application.initialize()
    await application.post_init(application)
    await application.start()


async def stop(application):
    await application.stop()
    await application.shutdown()
    await application.post_shutdown(application)
