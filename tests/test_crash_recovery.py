"""A bot killed mid-job: its user is told and their quota released as soon as the job's lease runs
out, not at the 15-minute stale sweep. (A killed Celery worker: tests/test_celery_worker.py.)"""

import signal
import subprocess
import sys
from pathlib import Path

from asgiref.sync import sync_to_async

from tests.conftest import settled
from tests.fakes.processes import process_env
from tests.test_bot_generation import ALICE, texts_in, usage_of

ROOT = Path(__file__).resolve().parent.parent
LEASE = 2  # JOB_LEASE_SECONDS of the processes here: renewed every third of a second


def runbot(tg, gemini):
    env = process_env(tg, gemini, JOB_LEASE_SECONDS=LEASE)
    return subprocess.Popen([sys.executable, "manage.py", "runbot"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def stop(process):
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def test_a_bot_killed_mid_job_tells_the_user_when_it_restarts(default_tiers, tg, gemini):
    gemini.enqueue("delay", seconds=60)  # the image is still being made when the bot dies
    first = runbot(tg, gemini)
    try:
        tg.push_text(ALICE, "a paper boat on a lake")
        await gemini.wait_for(lambda g: g.in_flight == 1, timeout=30, what="the image call")
        await tg.wait_for(lambda t: "Creating your image" in texts_in(t, ALICE)[-1], what="the status message")
    finally:
        first.kill()  # SIGKILL: no shutdown, the job stays "running"
        first.wait()
    second = runbot(tg, gemini)
    try:
        # Within seconds of the restart (the lease is LEASE seconds), not at the 15-minute stale sweep.
        await tg.wait_for(lambda t: "bot restarted" in texts_in(t, ALICE)[-1], timeout=30, what="the apology")
        [generation] = await settled(1)
        assert (generation.status, generation.error_code) == ("failed", "interrupted")
        assert await sync_to_async(usage_of)(ALICE) == (0, 0)
        assert not any("Creating your image" in text for text in texts_in(tg, ALICE))  # edited, not left

        tg.push_text(ALICE, "a paper boat on a lake, again")  # the slot it held is free again
        _, again = await settled(2, timeout=30)
        assert again.status == "delivered"
    finally:
        stop(second)
