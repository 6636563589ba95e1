from django.apps import AppConfig


class BotcoreConfig(AppConfig):
    name = "botcore"
    verbose_name = "Bot"

    def ready(self):
        from . import checks  # noqa: F401 - registers them
