"""In-process fakes of the Telegram Bot API and the Gemini image API for tests."""

from .gemini import FakeGemini
from .telegram import FakeTelegram

__all__ = ["FakeGemini", "FakeTelegram"]
