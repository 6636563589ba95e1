"""The apps import one way, accounts < botcore < dashboard < nanobot_site, even inside functions, and
botcore's generation domain doesn't import its Telegram runtime: `.importlinter` holds the contracts,
and a wrong-way import fails here naming the import chain."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_app_imports_an_app_above_it():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert " 0 broken" in result.stdout
