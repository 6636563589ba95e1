from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts.days import start_of as day_start
from botcore.models import Generation
from dashboard.generations import PAGE_SIZE
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def make(user, when=None, **fields):
    fields.setdefault("status", "delivered")
    fields.setdefault("prompt", "a cat")
    if when is not None:
        fields["created_at"] = when
    return Generation.objects.create(user=user, chat_id=user.telegram_id, **fields)


def listed(client, **params):
    response = client.get("/generations/", params)
    assert response.status_code == 200
    return [g.pk for g in response.context["generations"]]


def test_every_generation_page_is_for_staff_only(client):
    generation = make(UserFactory(), original=default_storage.save("results/t/1.png", ContentFile(PNG)))
    urls = ["/generations/", f"/generations/{generation.pk}/", f"/generations/{generation.pk}/image/"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(f"/login/?next={url}")
    client.force_login(get_user_model().objects.create_user("visitor", password="x"))
    for url in urls:
        assert client.get(url).status_code == 403


def test_staff_filters_the_log_by_status_user_dates_model_resolution_and_cache(admin_client):
    alice, bob = UserFactory(username="Alice_T"), UserFactory(username="bob")
    day = date(2025, 3, 10)
    failed = make(alice, day_start(day) + timedelta(hours=1), status="failed", error_code="safety")
    early = make(alice, day_start(day - timedelta(2)) + timedelta(hours=23), model="m-pro", resolution="4K")
    cached = make(bob, day_start(day) + timedelta(hours=2), model="m-pro", cache_hit=True)
    late = make(bob, day_start(day + timedelta(1)), model="m-lite", resolution="1K")

    assert listed(admin_client) == [late.pk, cached.pk, failed.pk, early.pk]
    assert listed(admin_client, status="failed") == [failed.pk]
    assert listed(admin_client, user=str(bob.telegram_id)) == [late.pk, cached.pk]
    assert listed(admin_client, user="@alice_t") == [failed.pk, early.pk]  # usernames match in any case
    assert listed(admin_client, **{"from": "2025-03-10", "to": "2025-03-10"}) == [cached.pk, failed.pk]
    assert listed(admin_client, **{"to": "2025-03-09"}) == [early.pk]
    assert listed(admin_client, model="m-pro") == [cached.pk, early.pk]
    assert listed(admin_client, model="m-pro", resolution="4K") == [early.pk]
    assert listed(admin_client, cache="yes") == [cached.pk]
    assert listed(admin_client, cache="no", user="bob") == [late.pk]
    assert listed(admin_client, user="@nobody") == [] and listed(admin_client, user="999") == []
    assert "No user has that Telegram id or username." in admin_client.get("/generations/?user=nobody").content.decode()


def test_bad_filters_are_reported_not_crashed_on(admin_client):
    make(UserFactory())
    response = admin_client.get("/generations/", {"from": "2025-03-10", "to": "2025-03-01", "user": "no such!"})
    page = response.content.decode()
    assert response.status_code == 200 and len(response.context["generations"]) == 1
    assert "must not be after the last" in page and "Enter a Telegram id or an @username." in page
    response = admin_client.get("/generations/", {"user": "9" * 30, "status": "nope", "before": "x_y"})
    assert response.status_code == 200 and len(response.context["generations"]) == 1


def test_user_text_is_escaped_on_the_list_and_the_detail(admin_client):
    generation = make(UserFactory(first_name="<b>x</b>", username=""), prompt="<script>alert(1)</script>")
    for url in ["/generations/", f"/generations/{generation.pk}/"]:
        page = admin_client.get(url).content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
        assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_staff_pages_through_many_generations_newest_first(admin_client, django_assert_max_num_queries):
    user = UserFactory()
    moment = day_start(date(2025, 1, 1))
    # Two generations share each moment: the pages must neither skip nor repeat them.
    Generation.objects.bulk_create(
        Generation(user=user, chat_id=1, prompt=f"p{n}", created_at=moment + timedelta(seconds=n // 2))
        for n in range(2 * PAGE_SIZE + 10)
    )
    newest_first = list(Generation.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))

    seen, url, pages = [], "/generations/", []
    while url:
        with django_assert_max_num_queries(3):  # session, staff user, one page of generations
            response = admin_client.get(url)
        pages.append(response)
        seen += [g.pk for g in response.context["generations"]]
        url = response.context["next"] and "/generations/" + response.context["next"]
    assert seen == newest_first and len(pages) == 3
    assert pages[0].context["previous"] is None and b"Older" in pages[0].content

    back = admin_client.get("/generations/" + pages[2].context["previous"])
    assert [g.pk for g in back.context["generations"]] == newest_first[PAGE_SIZE : 2 * PAGE_SIZE]
    first = admin_client.get("/generations/" + back.context["previous"])
    assert [g.pk for g in first.context["generations"]] == newest_first[:PAGE_SIZE]
    assert first.context["previous"] is None


def test_the_detail_shows_everything_about_one_generation(admin_client, django_assert_max_num_queries):
    user = UserFactory(username="carol")
    parent = make(user, prompt="a dog", original=default_storage.save("results/t/p.png", ContentFile(PNG)))
    child = make(
        user,
        prompt="make it blue",
        kind="refine",
        parent=parent,
        provider="gemini",
        model="gemini-3-pro-image-preview",
        status="failed",
        error_code="timeout",
        error_message="upstream took too long",
        upstream_latency_ms=1234,
        total_latency_ms=2345,
        cost_usd="0.1340",
        resolution="4K",
        aspect_ratio="16:9",
    )
    with django_assert_max_num_queries(4):  # session, staff user, the generation, what builds on it
        page = admin_client.get(f"/generations/{child.pk}/").content.decode()
    for text in [
        "make it blue",
        "Refine",
        "4K",
        "16:9",
        "gemini / gemini-3-pro-image-preview",
        "timeout",
        "upstream took too long",
        "1234 ms",
        "2345 ms",
        "$0.1340",
        f"/generations/{parent.pk}/",
        "@carol",
    ]:
        assert text in page, text
    assert "No image is kept" in page

    page = admin_client.get(f"/generations/{parent.pk}/").content.decode()
    assert f"/generations/{parent.pk}/image/" in page and f"/generations/{child.pk}/" in page
    assert admin_client.get("/generations/999999/").status_code == 404


def test_the_image_is_streamed_from_storage_to_staff(admin_client):
    user = UserFactory()
    kept = make(user, original=default_storage.save("results/t/kept.png", ContentFile(PNG)))
    response = admin_client.get(f"/generations/{kept.pk}/image/")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    assert response["Cache-Control"].startswith("private")

    assert admin_client.get(f"/generations/{make(user).pk}/image/").status_code == 404  # none kept
    default_storage.delete(kept.original.name)  # purged after RESULT_KEEP_DAYS
    assert admin_client.get(f"/generations/{kept.pk}/image/").status_code == 404


def test_a_kept_file_that_is_not_an_image_is_downloaded_not_shown(admin_client):
    odd = make(UserFactory(), original=default_storage.save("results/t/odd.html", ContentFile(b"<script></script>")))
    response = admin_client.get(f"/generations/{odd.pk}/image/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")


def test_the_detail_lists_what_builds_on_it_in_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries):
    parent = make(UserFactory())
    children = [make(parent.user, kind="refine", parent=parent) for _ in range(15)]
    with django_assert_max_num_queries(4):  # session, staff user, the generation, what builds on it
        page = admin_client.get(f"/generations/{parent.pk}/").content.decode()
    assert all(f"/generations/{child.pk}/" in page for child in children)
