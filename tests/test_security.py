"""Staff sign-in survives password guessing, and production runs on HTTPS settings `check --deploy` accepts."""

import os
import re
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
LOCKED = "Too many failed sign-ins. Try again in 15 minutes."

pytestmark = pytest.mark.django_db


@pytest.fixture
def olivia():
    return get_user_model().objects.create_user("olivia", password=PASSWORD, is_staff=True, is_superuser=True)


def sign_in(client, password, url="/login/", **extra):
    return client.post(url, {"username": "olivia", "password": password}, **extra)


def guess_wrong(client, times, url="/login/", **extra):
    return [sign_in(client, f"guess {attempt}", url, **extra).status_code for attempt in range(times)]


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(client, olivia):
    assert guess_wrong(client, 4) == [200] * 4  # the form again, saying the password was wrong
    assert sign_in(client, PASSWORD).status_code == 302  # four wrong guesses alone lock nothing
    client.post("/logout/")

    assert guess_wrong(client, 5)[-1] == 429
    response = sign_in(client, PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert b'name="password"' in response.content  # the sign-in page, not a bare error
    assert client.get("/").status_code == 302  # still signed out


def test_the_lockout_message_is_translated(client, olivia):
    guess_wrong(client, 5)
    response = sign_in(client, PASSWORD, HTTP_ACCEPT_LANGUAGE="zh-hant")
    assert response.status_code == 429
    assert "登入失敗次數過多，請 15 分鐘後再試。" in response.content.decode()


def test_after_the_cool_off_the_right_password_works_again(client, olivia, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    guess_wrong(client, 5)
    assert sign_in(client, PASSWORD).status_code == 429
    time.sleep(1.2)
    response = sign_in(client, PASSWORD)
    assert response.status_code == 302 and response.url == "/"


def test_guessing_from_one_address_does_not_lock_staff_out_from_another(client, olivia):
    guess_wrong(client, 5, REMOTE_ADDR="198.51.100.66")
    assert sign_in(client, PASSWORD, REMOTE_ADDR="198.51.100.66").status_code == 429
    assert sign_in(client, PASSWORD, REMOTE_ADDR="203.0.113.10").status_code == 302


def test_a_forwarded_for_header_does_not_escape_the_lockout_unless_a_proxy_is_configured(client, olivia):
    def claiming(address):
        return {"HTTP_X_REAL_IP": address, "HTTP_X_FORWARDED_FOR": address}

    for attempt in range(5):
        sign_in(client, f"guess {attempt}", **claiming(f"192.0.2.{attempt}"))
    assert sign_in(client, PASSWORD, **claiming("192.0.2.99")).status_code == 429


def test_behind_a_configured_proxy_each_client_is_counted_by_its_own_address(client, olivia, settings):
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_REAL_IP"]  # CLIENT_IP_HEADER=X-Real-IP
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    guess_wrong(client, 5, HTTP_X_REAL_IP="198.51.100.66", **proxy)
    assert sign_in(client, PASSWORD, HTTP_X_REAL_IP="198.51.100.66", **proxy).status_code == 429
    assert sign_in(client, PASSWORD, HTTP_X_REAL_IP="203.0.113.10", **proxy).status_code == 302


def test_the_admin_login_is_throttled_too(client, olivia):
    url = "/admin/login/?next=/admin/"
    guess_wrong(client, 5, url)
    response = sign_in(client, PASSWORD, url)
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert client.get("/admin/").status_code == 302


def documented_production_env():
    """The `.env` lines of the production example in docs/deploy.md."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    block = re.search(r"```sh\n# production \.env\n(.*?)```", text, re.S).group(1)
    return dict(line.split("=", 1) for line in block.splitlines() if line and not line.startswith("#"))


def test_the_documented_production_settings_pass_check_deploy():
    environment = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    environment.update(documented_production_env(), NANOBOT_ENV_FILE="", SECRET_KEY=secrets.token_urlsafe(50))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_local_defaults_keep_plain_http_working(client, olivia):
    assert client.get("/login/").status_code == 200  # not redirected to https://
    response = sign_in(client, PASSWORD)
    assert response.status_code == 302 and response.url == "/"
    assert not response.cookies["sessionid"]["secure"]  # a browser sends it back over http
    assert "Strict-Transport-Security" not in client.get("/").headers
