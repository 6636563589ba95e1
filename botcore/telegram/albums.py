"""Albums: Telegram sends each picture of an album as an update of its own, and behind a webhook served
by several workers the parts land in different processes.

The parts are gathered per bot, in Redis when CACHE_URL names one (else, or while it is away, in the
application's own memory), until none has come for ALBUM_WAIT_SECONDS; the part that arrived last
then takes the whole album and starts its one job.
"""

import asyncio
import json
import uuid
from dataclasses import dataclass

from django.conf import settings
from telegram import Update
from telegram.ext import Application

from botcore import shared

# KEYS[1]: the album. ARGV: the arrival that hopes to be the last. The album if it was, else nil.
_TAKE = """
if redis.call('HGET', KEYS[1], 'last') ~= ARGV[1] then return false end
local album = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return album
"""


@dataclass
class Part:
    message_id: int
    file_id: str | None
    shape: tuple[int, int] | None  # a photo's (width, height); files don't say
    captioned: Update | None  # the part's update when its caption is the prompt


@dataclass
class Album:
    references: list[str | None]  # file ids in the order the user sent them
    shape: tuple[int, int] | None  # the first part's to arrive
    captioned: Update | None  # the update of the part carrying the caption, if one did

    @property
    def caption(self) -> str | None:
        """The album's caption: the user's prompt."""
        message = self.captioned.effective_message if self.captioned is not None else None
        return message.caption if message is not None else None


async def gathered(application: Application, chat_id: int, group_id: str, part: Part) -> Album | None:
    """Add `part` to its album and wait ALBUM_WAIT_SECONDS: the whole album if no part came after it,
    else None (a later part will start the job)."""
    client = shared.async_client()
    if client is not None:
        try:
            return await _gathered_in_redis(client, application, shared.key("album", chat_id, group_id), part)
        except shared.DOWN as exc:
            shared.warn_down("gathering albums", exc)
    return await _gathered_here(application.bot_data.setdefault("albums", {}), (chat_id, group_id), part)


async def _gathered_here(albums: dict, key: tuple, part: Part) -> Album | None:
    album = albums.setdefault(key, {"parts": {}, "captioned": None})
    album["parts"][part.message_id] = part.file_id
    album.setdefault("shape", part.shape)
    if part.captioned is not None:
        album["captioned"] = part.captioned
    album["last"] = arrival = object()
    await asyncio.sleep(settings.ALBUM_WAIT_SECONDS)
    if album["last"] is not arrival:
        return None
    del albums[key]
    parts = album["parts"]
    return Album([parts[message_id] for message_id in sorted(parts)], album["shape"], album["captioned"])


async def _gathered_in_redis(client, application: Application, key: str, part: Part) -> Album | None:
    arrival = uuid.uuid4().hex
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={f"part:{part.message_id}": part.file_id or "", "last": arrival})
        pipe.hsetnx(key, "shape", json.dumps(part.shape))
        if part.captioned is not None:
            pipe.hset(key, "captioned", json.dumps(part.captioned.to_dict()))
        pipe.pexpire(key, int((settings.ALBUM_WAIT_SECONDS + 60) * 1000))  # an album left behind goes
        await shared.answer(pipe.execute())
    await asyncio.sleep(settings.ALBUM_WAIT_SECONDS)
    found = await shared.answer(client.eval(_TAKE, 1, key, arrival))
    if not found:
        return None
    fields = {name.decode(): value.decode() for name, value in zip(found[::2], found[1::2], strict=True)}
    parts = {
        int(name.removeprefix("part:")): value or None for name, value in fields.items() if name.startswith("part:")
    }
    shape = json.loads(fields["shape"])
    captioned = fields.get("captioned")
    return Album(
        [parts[message_id] for message_id in sorted(parts)],
        tuple(shape) if shape else None,
        Update.de_json(json.loads(captioned), application.bot) if captioned else None,
    )
