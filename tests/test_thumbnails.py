"""The lists show small copies of kept results, so a page of 50 rows doesn't load 50 originals of up to 4K."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from botcore.models import Generation
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def kept(image_bytes, name="results/t/big.png"):
    user = UserFactory()
    return Generation.objects.create(
        user=user,
        tier="free",
        chat_id=1,
        prompt="p",
        status="delivered",
        original=default_storage.save(name, ContentFile(image_bytes)),
    )


def png(width, height):
    data = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(data, "PNG")
    return data.getvalue()


def test_a_4k_result_is_shown_as_a_small_jpeg(admin_client):
    generation = kept(png(4096, 2304))
    response = admin_client.get(f"/generations/{generation.pk}/thumbnail.jpg")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as small:
        assert small.size == (192, 108)
    assert len(response.content) < 10_000


def test_a_thumbnail_is_made_once(admin_client):
    generation = kept(png(1024, 1024))
    first = admin_client.get(f"/generations/{generation.pk}/thumbnail.jpg").content
    default_storage.delete(generation.original.name)  # would be a 404 if it were made again
    assert admin_client.get(f"/generations/{generation.pk}/thumbnail.jpg").content == first


def test_a_result_no_longer_kept_or_not_an_image_has_no_thumbnail(admin_client):
    gone = kept(png(64, 64))
    default_storage.delete(gone.original.name)
    broken = kept(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "results/t/broken.png")
    assert admin_client.get(f"/generations/{gone.pk}/thumbnail.jpg").status_code == 404
    assert admin_client.get(f"/generations/{broken.pk}/thumbnail.jpg").status_code == 404


def test_thumbnails_are_for_staff_only(client):
    generation = kept(png(64, 64))
    assert client.get(f"/generations/{generation.pk}/thumbnail.jpg").status_code == 302
