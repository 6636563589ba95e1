import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a first staff account when there is none, and say how to sign in."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/login/")

    def handle(self, *args, url, **options):
        User = get_user_model()
        if User.objects.filter(is_staff=True, is_active=True).exists():
            self.stdout.write(f"Sign in at {url} with your staff account.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", password=password)
        self.stdout.write(
            f"Created the first staff account. Sign in at {url}\n"
            f"  username: admin\n  password: {password}\n"
            "Change the password in the admin (Users) after signing in."
        )
