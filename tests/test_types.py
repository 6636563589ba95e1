"""The type hints of accounts/ and botcore/ hold: mypy with django-stubs, as configured in mypy.ini
(strict for the service modules, the models, the providers, the generation domain and the runtime's
entry points), finds nothing. It needs no services and no .env, only tests.settings."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_type_errors():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
