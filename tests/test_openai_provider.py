"""The OpenAI-compatible images provider against a fake relay: the requests it sends, the images
it brings back, and the error code each kind of failure ends as."""

import io
import time

import httpx
import pytest
from PIL import Image

from botcore.providers.base import ImageRequest, ProviderError, Reference, Turn
from botcore.providers.openai_compat import OpenAICompatProvider, size_for
from tests.fakes.openai_images import FakeOpenAIImages

KEY = "sk-relay-5f3c9a1e7b2d4c6e8f0a"
MODEL = "gemini-3-pro-image-preview"


@pytest.fixture
def relay():
    with FakeOpenAIImages(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as client:
        yield client


def provider_for(relay, client, api_key=KEY, timeout=10.0, model=MODEL):
    return OpenAICompatProvider(client=client, api_key=api_key, base_url=relay.base_url, model=model, timeout=timeout)


def png(width, height, color=(200, 30, 30), fmt="PNG"):
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, fmt)
    return buf.getvalue()


def opened(result):
    result.file.seek(0)  # spool() leaves the file at its end; the bot's readers seek too
    return Image.open(io.BytesIO(result.file.read()))


async def failure_of(relay, client, **provider_kw):
    provider = provider_for(relay, client, **provider_kw)
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ImageRequest("a red fox in the snow", "1K", "1:1"))
    return caught.value


@pytest.mark.parametrize(
    "resolution, aspect_ratio, size",
    [
        ("1K", "1:1", "1024x1024"),
        ("1K", "16:9", "1024x576"),
        ("2K", "9:16", "1152x2048"),
        ("1K", "4:5", "832x1024"),
        ("4K", "21:9", "4096x1728"),
    ],
)
def test_size_keeps_the_long_side_and_rounds_the_short_side_to_64(resolution, aspect_ratio, size):
    assert size_for(resolution, aspect_ratio) == size


@pytest.mark.parametrize(
    "model, resolution, aspect_ratio, size",
    [
        ("gpt-image-1", "4K", "16:9", "1536x1024"),
        ("gpt-image-1.5", "2K", "9:16", "1024x1536"),
        ("gpt-image-1-mini", "1K", "1:1", "1024x1024"),
        ("gpt-image-2", "4K", "16:9", "3840x2160"),
        ("gpt-image-2", "4K", "1:1", "2880x2880"),
        ("gpt-image-2", "2K", "21:9", "2048x864"),
    ],
)
async def test_a_gpt_image_model_is_asked_for_a_size_it_takes_and_no_response_format(
    relay, client, model, resolution, aspect_ratio, size
):
    provider = provider_for(relay, client, model=model)

    result = await provider.generate(ImageRequest("a lighthouse at dusk", resolution, aspect_ratio))

    assert "x".join(map(str, opened(result).size)) == size
    [sent] = relay.requests
    assert sent.fields == {"model": model, "prompt": "a lighthouse at dusk", "n": 1, "size": size}


async def test_text_prompt_gives_an_image_of_the_requested_size(relay, client):
    provider = provider_for(relay, client)

    result = await provider.generate(ImageRequest("a lighthouse at dusk", "2K", "16:9"))

    image = opened(result)
    assert (image.format, image.size, result.mime_type) == ("PNG", (2048, 1152), "image/png")
    assert (result.provider, result.model) == ("openai", MODEL)
    [sent] = relay.requests
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.fields == {
        "model": MODEL,
        "prompt": "a lighthouse at dusk",
        "n": 1,
        "size": "2048x1152",
        "response_format": "b64_json",
    }


async def test_references_and_the_image_being_refined_all_go_to_edits(relay, client):
    earlier = Reference(png(64, 64, (0, 200, 0)), "image/png")
    cat = Reference(png(80, 60, fmt="JPEG"), "image/jpeg")
    hat = Reference(png(48, 48, (0, 0, 200), fmt="WEBP"), "image/webp")
    request = ImageRequest(
        "put the hat on the cat",
        "1K",
        "3:4",
        references=(cat, hat),
        history=(Turn("a green square", (), earlier),),
    )

    result = await provider_for(relay, client).generate(request)

    image = opened(result)
    assert image.size == (768, 1024)
    [sent] = relay.requests
    assert sent.path == "/v1/images/edits"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.fields == {
        "model": MODEL,
        "prompt": "put the hat on the cat",
        "n": "1",
        "size": "768x1024",
        "response_format": "b64_json",
    }
    assert sent.file_fields == ["image[]"] * 3
    assert sent.files == [
        ("image-0.png", "image/png", earlier.data),
        ("image-1.jpg", "image/jpeg", cat.data),
        ("image-2.webp", "image/webp", hat.data),
    ]


async def test_an_answer_with_a_link_is_downloaded_without_the_key(relay, client):
    relay.enqueue("url")

    result = await provider_for(relay, client).generate(ImageRequest("a kite", "1K", "1:1"))

    image = opened(result)
    assert (image.size, result.mime_type) == ((1024, 1024), "image/png")
    generation, download = relay.requests
    assert generation.path == "/v1/images/generations"
    assert download.method == "GET" and download.path.startswith("/files/")
    assert "authorization" not in download.headers


@pytest.mark.parametrize("kind", ["image", "url"])
@pytest.mark.parametrize("fmt, mime_type", [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
async def test_the_image_is_labelled_with_its_real_format(relay, client, kind, fmt, mime_type):
    relay.enqueue(kind, image_format=fmt)

    result = await provider_for(relay, client).generate(ImageRequest("a kite", "1K", "1:1"))

    image = opened(result)
    assert (image.format, result.mime_type) == (fmt, mime_type)


@pytest.mark.parametrize(
    "code, expected",
    [
        ("content_policy_violation", ProviderError.SAFETY),
        ("moderation_blocked", ProviderError.SAFETY),
        ("invalid_value", ProviderError.BAD_REQUEST),
    ],
)
async def test_a_refusal_is_told_apart_from_a_malformed_request(relay, client, code, expected):
    relay.enqueue("http_error", status=400, code=code)

    error = await failure_of(relay, client)

    assert error.code == expected and not error.transient
    assert len(relay.requests) == 1


@pytest.mark.parametrize(
    "code, param",
    [("unknown_parameter", "response_format"), ("invalid_value", "size"), ("invalid_value", "model")],
)
async def test_a_request_the_model_does_not_take_is_for_the_operator_not_the_user(relay, client, code, param):
    relay.enqueue("http_error", status=400, code=code, param=param, message=f"Invalid value for '{param}'.")

    error = await failure_of(relay, client)

    assert error.code == ProviderError.OPERATOR and not error.transient


@pytest.mark.parametrize(
    "status, code, expected",
    [
        (429, None, ProviderError.RATE_LIMITED),
        (429, "insufficient_quota", ProviderError.OPERATOR),
        (400, "billing_hard_limit_reached", ProviderError.OPERATOR),
        (404, None, ProviderError.OPERATOR),
    ],
)
async def test_busy_is_worth_a_retry_but_an_empty_account_is_for_the_operator(relay, client, status, code, expected):
    relay.enqueue("http_error", status=status, code=code)

    error = await failure_of(relay, client)

    assert error.code == expected
    assert error.transient == (expected == ProviderError.RATE_LIMITED)


async def test_a_wrong_key_is_for_the_operator_and_never_shown(relay, client):
    wrong = "sk-wrong-9d8c7b6a5f4e3d2c1b0a"

    error = await failure_of(relay, client, api_key=wrong)

    assert error.code == ProviderError.OPERATOR
    assert "Incorrect API key" in error.detail
    assert wrong not in str(error) and wrong not in error.detail


async def test_a_relay_quoting_the_key_back_does_not_leak_it(relay, client):
    relay.enqueue("http_error", status=401, message=f"invalid token {KEY} (request id 42)", type="new_api_error")

    error = await failure_of(relay, client)

    assert error.code == ProviderError.OPERATOR
    assert KEY not in str(error) and "invalid token" in error.detail


@pytest.mark.parametrize("kind, params", [("http_error", {"status": 503}), ("garbage", {})])
async def test_server_trouble_is_unavailable_and_worth_a_retry(relay, client, kind, params):
    relay.enqueue(kind, **params)

    error = await failure_of(relay, client)

    assert error.code == ProviderError.UNAVAILABLE and error.transient


async def test_an_unreachable_relay_is_unavailable(client):
    with FakeOpenAIImages(api_key=KEY) as gone:
        pass  # stopped: its port now refuses connections

    error = await failure_of(gone, client)

    assert error.code == ProviderError.UNAVAILABLE


async def test_an_answer_without_an_image_is_no_image(relay, client):
    relay.enqueue("empty")

    error = await failure_of(relay, client)

    assert error.code == ProviderError.NO_IMAGE and not error.transient


async def test_a_slow_relay_times_out(relay, client):
    relay.latency = 5
    started = time.monotonic()

    error = await failure_of(relay, client, timeout=0.3)

    assert error.code == ProviderError.TIMEOUT
    assert time.monotonic() - started < 2
