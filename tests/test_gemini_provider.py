"""What the Gemini provider sends back of an earlier answer when a result is refined."""

import base64

import httpx
import pytest

from botcore.providers.base import ImageRequest, Reference, Turn
from botcore.providers.gemini import GeminiProvider

MODEL = "gemini-3-pro-image-preview"


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as client:
        yield client


async def test_a_refine_sends_back_the_thoughts_and_the_final_image_but_not_the_drafts(gemini, client):
    gemini.with_thought_image = True  # thought text, a draft image, the model's words, the final image
    provider = GeminiProvider(
        client=client, api_key=gemini.api_key, base_url=gemini.base_url, model=MODEL, timeout=10, max_retries=0
    )
    first = await provider.generate(ImageRequest("a lighthouse", "1K", "1:1"))
    first.file.seek(0)
    image = first.file.read()
    earlier = Turn("a lighthouse", (), Reference(image, first.mime_type), first.thought_signature, first.model_turn)

    await provider.generate(ImageRequest("now at sunset", "1K", "1:1", history=(earlier,)))

    thought, said, final = gemini.requests[1].body["contents"][1]["parts"]
    assert thought == {"text": "Planning the composition.", "thought": True}
    assert said["text"] == "Here is your image." and said["thoughtSignature"]
    assert final["thoughtSignature"] == first.thought_signature
    assert base64.b64decode(final["inlineData"]["data"]) == image
