"""`python manage.py runbot` itself: polls, answers, and stops cleanly on Ctrl+C; waits for Telegram to come
up, and says in one line, without the token, why it can't start."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import settled
from tests.fakes.processes import BOT_TOKEN, free_port, process_env

ROOT = Path(__file__).resolve().parent.parent


async def test_runbot_serves_a_user_and_stops_on_interrupt(default_tiers, tg, gemini):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runbot"],
        cwd=ROOT,
        env=process_env(tg, gemini),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        tg.push_text(801, "/start")
        await tg.wait_for_call("sendMessage", timeout=30)
        tg.push_text(801, "a snowy village at night")
        [generation] = await settled(1, timeout=30)
        assert generation.status == "delivered"
        assert len(tg.calls_of("sendPhoto")) == 1
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert BOT_TOKEN not in output  # the token is a secret: never in the log


def runbot(env):
    # Unbuffered, so the order of stdout and the log in one pipe is the order things happened.
    return subprocess.Popen(
        [sys.executable, "manage.py", "runbot"],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def interrupt(process):
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=30)[0]


def test_a_rejected_token_stops_the_bot_at_once_with_one_line_that_keeps_it_secret(tg, gemini):
    env = process_env(tg, gemini, TELEGRAM_BOT_TOKEN="123456:rejected-SECRET-half", LOG_LEVEL="WARNING")
    process = runbot(env)
    output = process.communicate(timeout=30)[0]
    assert process.returncode != 0
    assert output.splitlines() == [
        "CommandError: Telegram rejected TELEGRAM_BOT_TOKEN; copy the bot's token from @BotFather into .env"
    ]
    assert not [line for line in output.splitlines() if "123456:rejected" in line or "SECRET-half" in line]


async def test_runbot_waits_for_the_bot_api_to_come_up_before_it_says_it_is_polling(default_tiers, tg, gemini):
    tg.fail_next("getMe", 502, "Bad Gateway", times=2)
    process = runbot(process_env(tg, gemini))
    try:
        tg.push_text(801, "/start")
        await tg.wait_for_call("sendMessage", timeout=30)
    finally:
        output = interrupt(process)
    lines = output.splitlines()
    waits = [i for i, line in enumerate(lines) if "Telegram could not be reached (Bad Gateway); trying again" in line]
    polling = lines.index("NanoBot is polling Telegram for updates (Ctrl+C stops it).")
    assert len(waits) == 2 and waits[-1] < polling, output
    assert "Traceback" not in output and BOT_TOKEN not in output and BOT_TOKEN.split(":")[1] not in output


def test_runbot_keeps_trying_an_unreachable_bot_api_one_line_a_try(tg, gemini):
    port = free_port()
    process = runbot(process_env(tg, gemini, TELEGRAM_BASE_URL=f"http://127.0.0.1:{port}/bot", LOG_LEVEL="WARNING"))
    time.sleep(4)
    still_trying = process.poll() is None
    output = interrupt(process)
    assert still_trying, output
    lines = output.splitlines()
    assert process.returncode == 0 and len(lines) >= 2, output  # tried again after 1 s, and after 2 more
    assert all("Telegram could not be reached (aiohttp.ClientConnectorError" in line for line in lines), output


async def test_with_log_format_json_each_line_is_an_object_and_a_jobs_lines_name_its_generation(
    default_tiers, tg, gemini
):
    gemini.enqueue("http_error", status=503)  # the job logs its retry
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runbot"],
        cwd=ROOT,
        env={**process_env(tg, gemini, LOG_FORMAT="json", LOG_LEVEL="INFO"), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        tg.push_text(801, "a snowy village at night")
        [generation] = await settled(1, timeout=30)
    finally:
        process.send_signal(signal.SIGINT)
        log = process.communicate(timeout=30)[1]
    lines = [json.loads(line) for line in log.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [retry] = [line for line in lines if "retry" in line["message"]]
    assert (retry["level"], retry["generation_id"]) == ("WARNING", generation.pk)
    assert not any("generation_id" in line for line in lines if line["logger"] == "telegram.ext.Application")
