"""The webhook feeds Telegram's updates to the same handlers as polling, and only Telegram's."""

import pytest
from django.core.management import CommandError, call_command

from botcore import views
from tests.conftest import WEBHOOK_SECRET as SECRET
from tests.conftest import WEBHOOK_URL as URL
from tests.conftest import settled


async def test_update_posted_with_the_secret_gets_an_image(webhook, async_client, tg, gemini):
    update = tg.push_text(601, "a lantern festival")
    response = await async_client.post(
        URL, update, content_type="application/json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status_code == 200
    [generation] = await settled(1)
    assert generation.status == "delivered" and generation.user.telegram_id == 601
    assert len(tg.calls_of("sendPhoto")) == 1


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "guessed-secret-0000000"}])
async def test_update_without_the_right_secret_is_refused(webhook, async_client, tg, gemini, headers):
    update = tg.push_text(601, "a lantern festival")
    response = await async_client.post(URL, update, content_type="application/json", headers=headers)
    assert response.status_code == 403
    assert gemini.requests == [] and views._running is None


async def test_webhook_is_off_until_a_secret_is_configured(transactional_db, async_client, settings):
    settings.TELEGRAM_WEBHOOK_SECRET = ""
    response = await async_client.post(URL, {}, content_type="application/json")
    assert response.status_code == 404


def test_setwebhook_registers_the_url_with_the_secret(bot_settings, tg):
    bot_settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    call_command("setwebhook", "https://bot.example.com/telegram/webhook/")
    [call] = tg.calls_of("setWebhook")
    assert call.params["secret_token"] == SECRET
    with pytest.raises(CommandError, match="(?i)https url must be provided"):
        call_command("setwebhook", "http://insecure.example.com/")
