"""Outgoing rate limiting that matches what Telegram actually limits."""

from telegram.ext import AIORateLimiter

# Telegram's limits (about 30 messages a second per bot, about one a second per chat) are on
# messages. Chat actions, edits and deletions don't add messages to a chat, so they skip the
# queue instead of delaying everyone's images behind them.
MESSAGE_ENDPOINTS = {
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "sendAnimation",
    "sendVideo",
    "sendAudio",
    "sendVoice",
    "sendSticker",
    "copyMessage",
    "forwardMessage",
}


class MessageRateLimiter(AIORateLimiter):
    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        if endpoint not in MESSAGE_ENDPOINTS:
            return await callback(*args, **kwargs)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
