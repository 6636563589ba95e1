import codecs
import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts import days
from accounts.days import start_of as day_start
from botcore.models import Generation
from dashboard.generations import CSV_BATCH
from dashboard.keyset import PAGE_SIZE
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
        # Session, staff user, one page of generations; and the total: the first day, the days still
        # open, the summaries' and the open days' figures, the summaries kept.
        with django_assert_max_num_queries(8):
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
        "The provider took too long to answer.",
        "upstream took too long",
        "1234 ms",
        "2345 ms",
        "$0.13",
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


def test_the_list_shows_thumbnails_words_money_and_zoned_times(admin_client, settings):
    settings.TIME_ZONE = "Asia/Taipei"
    user = UserFactory()
    kept = make(
        user,
        datetime(2025, 3, 10, 4, 5, tzinfo=UTC),
        prompt="a very long prompt about a cat " * 10,
        aspect_ratio="9:16",
        cost_usd="0.1340",
        original=default_storage.save("results/t/thumb.png", ContentFile(PNG)),
    )
    make(user, status="failed", error_code="timeout")
    page = admin_client.get("/generations/").content.decode()
    thumbnail = (
        f'<a href="/generations/{kept.pk}/"><img class="thumb" src="/generations/{kept.pk}/thumbnail.jpg" '
        f'width="54" height="96" alt="a very long prompt about a cat a very long prompt about a cat a very long '
        f'promp…" loading="lazy"></a>'
    )
    assert thumbnail in page and page.count('class="thumb"') == 1  # only a kept image has one
    assert "2025-03-10 12:05 CST" in page and "$0.13" in page and "$0.1340" not in page
    assert "Failed: The provider took too long to answer." in page and "(timeout)" not in page


def test_the_total_counts_and_sums_every_generation_the_filters_match(admin_client):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    today = days.today()
    for n, (user, status, model, cost) in enumerate(
        [
            (alice, "delivered", "m-pro", "0.1340"),
            (alice, "failed", "m-pro", "0"),
            (bob, "delivered", "m-lite", "0.0390"),
            (bob, "delivered", "m-pro", "0.2400"),
            (bob, "refused", "", "0"),
        ]
    ):
        for day in (today - timedelta(days=10 + n), today - timedelta(days=2), today):  # closed days, and open
            make(user, day_start(day) + timedelta(hours=1), status=status, model=model, cost_usd=cost)

    def total(**filters):
        totals = admin_client.get("/generations/", filters).context["totals"]
        rows = Generation.objects.filter(pk__in=listed(admin_client, **filters))
        assert totals["images"] == rows.count() and totals["spend"] == sum(g.cost_usd for g in rows), filters
        return totals

    everything = total()
    assert everything["images"] == 15 and everything["spend"] == Decimal("1.2390")
    assert everything["statuses"] == [("Delivered", 9), ("Failed", 3), ("Refused", 3)]
    assert total(status="delivered")["images"] == 9
    assert total(model="m-pro", **{"from": str(today - timedelta(days=2))})["images"] == 6
    assert total(user="@bob", status="delivered")["spend"] == Decimal("0.8370")
    assert total(user="@nobody")["images"] == 0
    page = admin_client.get("/generations/", {"status": "delivered", "user": "@alice"}).content.decode()
    assert "3 generations, $0.40" in page and "(Delivered: 3)" in page


def test_staff_page_oldest_first_both_ways(admin_client):
    user = UserFactory()
    moment = day_start(date(2025, 1, 1))
    Generation.objects.bulk_create(
        Generation(
            user=user, chat_id=1, prompt=f"p{n}", status="delivered", created_at=moment + timedelta(seconds=n // 2)
        )
        for n in range(PAGE_SIZE + 10)
    )
    oldest_first = list(Generation.objects.order_by("created_at", "pk").values_list("pk", flat=True))
    first = admin_client.get("/generations/", {"sort": "oldest"})
    assert [g.pk for g in first.context["generations"]] == oldest_first[:PAGE_SIZE]
    assert "Newer →" in first.content.decode()
    second = admin_client.get("/generations/" + first.context["next"])
    assert [g.pk for g in second.context["generations"]] == oldest_first[PAGE_SIZE:]
    assert second.context["next"] is None and "sort=oldest" in second.context["previous"]
    back = admin_client.get("/generations/" + second.context["previous"])
    assert [g.pk for g in back.context["generations"]] == oldest_first[:PAGE_SIZE] and back.context["previous"] is None


def csv_of(response):
    body = b"".join(response.streaming_content)
    assert body.startswith(codecs.BOM_UTF8)  # Excel then reads it as UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_csv_has_every_filtered_row_readable_by_excel_and_harmless(admin_client):
    alice = UserFactory(username="alice")
    make(alice, prompt="一隻貓在月光下", model="m-pro", cost_usd="0.1340", total_latency_ms=9000)
    make(alice, prompt='=HYPERLINK("http://evil.example","click")', status="failed", error_code="safety")
    make(UserFactory(username="bob"), prompt="someone else's")

    page = admin_client.get("/generations/", {"user": "@alice"}).content.decode()
    assert '<a href="/generations/export.csv?user=%40alice">Download these as CSV</a>' in page
    response = admin_client.get("/generations/export.csv", {"user": "@alice"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="nanobot-generations-')
    header, formula, cat = csv_of(response)
    assert header[:9] == [
        "id",
        "created_at",
        "telegram_id",
        "username",
        "kind",
        "status",
        "error_code",
        "prompt",
        "model",
    ]
    row = dict(zip(header, cat, strict=True))
    assert row["prompt"] == "一隻貓在月光下" and row["username"] == "alice" and row["cost_usd"] == "0.1340"
    assert (row["status"], row["latency_ms"], row["cache_hit"]) == ("delivered", "9000", "no")
    assert dict(zip(header, formula, strict=True))["prompt"] == '\'=HYPERLINK("http://evil.example","click")'


def test_the_csv_of_many_rows_is_read_in_batches_in_the_lists_order(admin_client, django_assert_max_num_queries):
    user = UserFactory()
    moment = day_start(date(2025, 1, 1))
    Generation.objects.bulk_create(
        Generation(user=user, chat_id=1, prompt=f"p{n}", created_at=moment + timedelta(seconds=n // 3))
        for n in range(2 * CSV_BATCH + 5)
    )
    with django_assert_max_num_queries(5):  # session, staff user, three batches
        rows = csv_of(admin_client.get("/generations/export.csv", {"sort": "oldest"}))[1:]
    assert [int(row[0]) for row in rows] == list(
        Generation.objects.order_by("created_at", "pk").values_list("pk", flat=True)
    )


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_csv_is_sent_as_it_is_made(async_client):
    staff = await get_user_model().objects.acreate(username="olivia", is_staff=True)
    await async_client.aforce_login(staff)
    user = await sync_to_async(UserFactory)()
    await Generation.objects.acreate(user=user, chat_id=1, prompt="一隻貓")
    response = await async_client.get("/generations/export.csv")
    assert response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert body.startswith(codecs.BOM_UTF8) and "一隻貓" in body.decode("utf-8-sig")
