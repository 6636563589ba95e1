"""Small copies of kept results for the lists: a page of 50 rows would otherwise load 50 originals of up to
4K (megabytes each on a phone). Made once per image with Pillow and kept in the cache (Redis when
configured), so a list costs the first staff member who opens it a resize per image, and no one after."""

import io

from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from PIL import Image

from botcore.models import Generation

from .access import staff_required

SHOWN = 96  # px, a thumbnail's longer side on the page
SIZE = 2 * SHOWN  # px, the image's longer side: sharp on dense screens
KEPT_SECONDS = 7 * 24 * 3600


def thumbnail_of(generation: Generation) -> bytes | None:
    """A JPEG at most SIZE px on its longer side, or None when the original is gone or is not an image."""
    key = f"thumb:{generation.pk}:{generation.original.name}"
    if (found := cache.get(key)) is not None:
        return found
    try:
        with generation.original.storage.open(generation.original.name, "rb") as file, Image.open(file) as image:
            image.thumbnail((SIZE, SIZE))
            small = io.BytesIO()
            image.convert("RGB").save(small, "JPEG", quality=80, optimize=True)
    except (OSError, Image.DecompressionBombError):  # gone, unreadable (UnidentifiedImageError), or a bomb
        return None
    cache.set(key, small.getvalue(), KEPT_SECONDS)
    return small.getvalue()


def thumbnail_size(aspect_ratio):
    """(width, height) of a thumbnail SHOWN on its longer side in `aspect_ratio` ("16:9"; a square
    when it can't be read), so that the page doesn't jump about as the images come in."""
    width, _sep, height = aspect_ratio.partition(":")
    try:
        width, height = int(width), int(height)
    except ValueError:
        return SHOWN, SHOWN
    if width <= 0 or height <= 0:
        return SHOWN, SHOWN
    longer = max(width, height)
    return round(SHOWN * width / longer), round(SHOWN * height / longer)


def laid_out(generations):
    """`generations` (as a list), each with the thumb_width and thumb_height of its thumbnail."""
    generations = list(generations)
    for generation in generations:
        generation.thumb_width, generation.thumb_height = thumbnail_size(generation.aspect_ratio)
    return generations


@staff_required
def generation_thumbnail(request, pk):
    generation = get_object_or_404(Generation.objects.only("pk", "original"), pk=pk)
    if not generation.original or (small := thumbnail_of(generation)) is None:
        raise Http404("No kept image")
    response = HttpResponse(small, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


urlpatterns = [path("generations/<int:pk>/thumbnail.jpg", generation_thumbnail, name="generation-thumbnail")]
