"""`python manage.py runbot` itself: polls, answers, and stops cleanly on Ctrl+C."""

import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import settled
from tests.fakes.processes import BOT_TOKEN, process_env

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
