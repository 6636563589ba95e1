import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken, hash_key


class Command(BaseCommand):
    help = "Create a JSON API token for a staff account and print its key (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("name", help="What the token is for, e.g. 'grafana'.")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not (user.is_active and user.is_staff):
            raise CommandError(f"{username!r} is not an active staff account.")
        key = "nb_" + secrets.token_urlsafe(32)
        ApiToken.objects.create(user=user, name=name, key_hash=hash_key(key))
        self.stdout.write(
            f"API token {name!r} for {username}. The key is shown only this once:\n\n  {key}\n\n"
            "Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' to /api/."
        )
