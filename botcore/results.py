"""The original files of results, kept for RESULT_KEEP_DAYS: the "Original file" button, refining
and the dashboard use them."""

from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts import days

from .models import Generation

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def keep(generation: Generation, file: IO[bytes], mime_type: str) -> str:
    """Store the result in `file`; the stored name, for Generation.original."""
    file.seek(0)
    day = days.today()
    name = f"results/{day:%Y/%m/%d}/{generation.pk}.{EXTENSIONS.get(mime_type, 'png')}"
    stored = default_storage.save(name, File(file, name=name))
    file.seek(0)
    return stored


def read(generation: Generation) -> bytes | None:
    """The kept original's bytes, or None once it is gone."""
    if not generation.original:
        return None
    try:
        with default_storage.open(generation.original.name) as file:
            return file.read()
    except FileNotFoundError:
        return None


def purge_old() -> int:
    """Delete originals older than RESULT_KEEP_DAYS; how many were deleted."""
    cutoff = timezone.now() - timedelta(days=settings.RESULT_KEEP_DAYS)
    old = Generation.objects.filter(created_at__lt=cutoff).exclude(original="")
    deleted = 0
    for generation in old.only("pk", "original")[:500]:
        default_storage.delete(generation.original.name)
        Generation.objects.filter(pk=generation.pk).update(original="")
        deleted += 1
    return deleted
