from django.core.management.base import BaseCommand

from accounts import credits
from accounts.models import TelegramUser


class Command(BaseCommand):
    help = "Set every user's credits to what their ledger sums to, and list those that had drifted."

    def handle(self, *args, **options):
        drifted = 0
        for user in TelegramUser.objects.filter(ledger__isnull=False).distinct().iterator():
            kept = user.credits
            if credits.recount(user) != kept:
                drifted += 1
                self.stdout.write(f"{user}: {kept} kept, {user.credits} in the ledger")
        self.stdout.write(f"{drifted} users' credits corrected.")
