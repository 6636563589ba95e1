import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from accounts import days
from botcore import generations
from botcore.models import Generation
from tests.factories import PaymentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

MARCH = {"range": "custom", "from": "2025-03-01", "to": "2025-03-05"}
TABLES = ["day", "tier", "user", "model"]


def make(user, day, hour=12, status="delivered", cost="0.1340", **fields):
    return Generation.objects.create(
        user=user,
        tier=user.tier.name,
        chat_id=user.telegram_id,
        prompt="a cat",
        status=status,
        cost_usd=cost if status == "delivered" else "0",
        created_at=days.start_of(day) + timedelta(hours=hour),
        **fields,
    )


@pytest.fixture
def march():
    """Two tiers, three users, five days of March 2025, and one generation either side of them."""
    free, pro = TierFactory(name="Free"), TierFactory(name="Pro")
    ann, ben = UserFactory(username="ann", tier=free), UserFactory(username="ben", tier=free)
    cat = UserFactory(username="cat", tier=pro)
    make(ann, date(2025, 3, 1), model="m-pro", resolution="2K")
    make(ann, date(2025, 3, 1), hour=23, model="m-pro", resolution="2K")
    make(ben, date(2025, 3, 1), status="failed", model="m-pro", resolution="2K")
    make(cat, date(2025, 3, 3), cost="0.2400", model="m-pro", resolution="4K")
    make(cat, date(2025, 3, 3), cost="0", model="m-pro", resolution="4K", cache_hit=True)
    make(ben, date(2025, 3, 5), hour=0, cost="0.0390", model="m-lite", resolution="1K")
    make(ann, date(2025, 2, 28), hour=23)  # the day before the range
    make(ann, date(2025, 3, 6), hour=0)  # the day after
    return {"free": free, "pro": pro, "ann": ann, "ben": ben, "cat": cat}


def export(client, table, **params):
    response = client.get(f"/costs/export/{table}.csv", params or MARCH)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_cost_pages_and_exports_are_for_staff_only(client):
    urls = ["/costs/"] + [f"/costs/export/{table}.csv" for table in TABLES]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(f"/login/?next={url}")
    client.force_login(get_user_model().objects.create_user("visitor", password="x"))
    for url in urls:
        assert client.get(url).status_code == 403


def test_spend_and_images_are_summed_per_day_across_days(admin_client, march, django_assert_max_num_queries):
    admin_client.get("/costs/", MARCH)  # the first look sums each closed day up, once
    # session, user; open jobs, summed days, their rows, open days; top users; payments by day
    with django_assert_max_num_queries(10):
        response = admin_client.get("/costs/", MARCH)
    days = {row["day"]: row for row in response.context["days"]}
    assert list(days) == [date(2025, 3, n) for n in range(1, 6)]
    assert (days[date(2025, 3, 1)]["delivered"], days[date(2025, 3, 1)]["failed"]) == (2, 1)
    assert days[date(2025, 3, 1)]["spend"] == Decimal("0.2680")
    assert days[date(2025, 3, 2)] == {
        "day": date(2025, 3, 2),
        **{"delivered": 0, "failed": 0, "spend": 0, "stars": 0, "revenue": 0, "margin": 0},
    }
    assert (days[date(2025, 3, 3)]["delivered"], days[date(2025, 3, 3)]["spend"]) == (2, Decimal("0.2400"))
    assert days[date(2025, 3, 5)]["spend"] == Decimal("0.0390")
    totals = response.context["totals"]
    assert (totals["delivered"], totals["failed"], totals["spend"]) == (5, 1, Decimal("0.5470"))
    assert (totals["stars"], totals["margin"]) == (0, Decimal("-0.5470"))
    assert "$0.55" in response.content.decode()


def test_days_are_counted_in_the_configured_time_zone(admin_client, settings):
    settings.TIME_ZONE = "Asia/Taipei"  # UTC+8
    user = UserFactory()
    make(user, date(2025, 3, 1), hour=23)  # 15:00 UTC on the 1st: the 1st in Taipei
    make(user, date(2025, 3, 2), hour=1)  # 17:00 UTC on the 1st: the 2nd in Taipei
    days = admin_client.get("/costs/", MARCH).context["days"]
    assert [row["delivered"] for row in days] == [1, 1, 0, 0, 0]


def test_spend_is_grouped_by_tier_user_and_model_with_resolution(admin_client, march):
    context = admin_client.get("/costs/", MARCH).context
    tiers = {row["tier"]: row for row in context["tiers"]}
    assert list(tiers) == ["Free", "Pro"]  # most spent first
    assert (tiers["Free"]["delivered"], tiers["Free"]["failed"]) == (3, 1)
    assert tiers["Free"]["spend"] == Decimal("0.3070") and tiers["Pro"]["spend"] == Decimal("0.2400")

    users = [(row["name"], row["delivered"], row["spend"]) for row in context["users"]]
    assert users == [("@ann", 2, Decimal("0.2680")), ("@cat", 2, Decimal("0.2400")), ("@ben", 1, Decimal("0.0390"))]

    models = {(row["model"], row["resolution"]): row for row in context["models"]}
    assert list(models) == [("m-lite", "1K"), ("m-pro", "2K"), ("m-pro", "4K")]
    assert (models["m-pro", "4K"]["delivered"], models["m-pro", "4K"]["cache_hits"]) == (2, 1)
    assert models["m-pro", "2K"]["per_image"] == Decimal("0.1340")


def test_spend_stays_with_the_tier_a_user_was_on_when_they_asked(admin_client):
    user = UserFactory(tier=TierFactory(name="Free"))
    identity = generations.Identity(telegram_id=user.telegram_id)
    (generation,) = generations.request(identity=identity, chat_id=user.telegram_id, prompt="a paper crane")
    generations.finish(generation, Generation.Status.DELIVERED, cost_usd=Decimal("0.134"))
    admin_client.post(f"/users/{user.pk}/tier/", {"tier": TierFactory(name="Pro").pk})
    user.refresh_from_db()
    assert user.tier.name == "Pro"
    tiers = admin_client.get("/costs/").context["tiers"]
    assert [(row["tier"], row["spend"]) for row in tiers] == [("Free", Decimal("0.134"))]


def test_the_charts_are_inline_svg_with_one_point_and_one_bar_per_day(admin_client, march):
    page = admin_client.get("/costs/", MARCH).content.decode()
    assert page.count("<svg") == 2 * 2  # each chart: its frame, and its plot inside
    charts = page.split('<figure class="chart">', 1)[1].split("</figure>")[0]
    assert "<script" not in charts and "http" not in charts  # drawn on the server, nothing fetched
    assert page.count('<circle class="point"') == 5 and page.count('<rect class="bar"') == 5
    assert '<td>2025-03-01 Sat</td><td class="n">$0.27</td>' in page  # the values, in a table too
    assert "2025-03-03: 2" in page

    page = admin_client.get("/costs/", {"range": "90"}).content.decode()
    assert page.count('<rect class="bar"') == 90 and page.count("<circle") == 0  # 90 marks would merge
    line = re.search(r'<polyline class="line" points="([^"]*)"', page).group(1)
    assert len(line.split()) == 90


def axes(chart):
    """(the x axis's date labels, the y axis's tick labels) of a chart's SVG."""
    dates = re.findall(r'<text x="[\d.]+%" y="\d+" text-anchor="\w+">([^<]+)</text>', chart)
    ticks = re.findall(r'<text x="2" y="[\d.]+">([^<]+)</text>', chart)
    return dates, ticks


def test_the_charts_have_dated_axes_round_ticks_and_the_budget_line(admin_client, march, settings):
    settings.MONTHLY_BUDGET_USD = Decimal("6.20")  # 20 cents a day of March
    page = admin_client.get("/costs/", MARCH).content.decode()
    spend, images = page.split('<figure class="chart">')[1:3]
    assert axes(spend) == (["Mar 1", "Mar 2", "Mar 3", "Mar 4", "Mar 5"], ["$0.00", "$0.10", "$0.20", "$0.30"])
    assert axes(images)[1] == ["0", "1", "2"]
    assert 'class="budget"' in spend and "Budget: $0.20 a day" in spend
    assert 'aria-label="Spend per day, 2025-03-01 to 2025-03-05: $0.55 in all, the most on 2025-03-01 ($0.27).' in spend

    settings.MONTHLY_BUDGET_USD = None
    assert 'class="budget"' not in admin_client.get("/costs/", MARCH).content.decode()


def test_a_long_range_labels_a_few_dates_far_enough_apart_for_a_phone(admin_client):
    for params, expected in (({}, 5), ({"range": "90"}, 5), ({"from": "2025-01-01", "to": "2025-12-31"}, 5)):
        chart = admin_client.get("/costs/", params).content.decode().split('<figure class="chart">')[1]
        dates, ticks = axes(chart)
        assert len(dates) == expected and 3 <= len(ticks) <= 5


def test_the_presets_end_today(admin_client):
    user, today = UserFactory(), days.today()
    make(user, today, hour=0, cost="1.0000")
    make(user, today - timedelta(29), hour=0, cost="0.5000")
    make(user, today - timedelta(30), hour=0, cost="0.2500")
    context = admin_client.get("/costs/").context
    assert (context["first"], context["last"], context["preset"]) == (today - timedelta(29), today, "30")
    assert context["totals"]["spend"] == Decimal("1.5000")
    context = admin_client.get("/costs/", {"range": "90"}).context
    assert len(context["days"]) == 90 and context["totals"]["spend"] == Decimal("1.7500")


def test_every_table_exports_as_csv_with_the_same_numbers(admin_client, march, django_assert_max_num_queries):
    export(admin_client, "day")  # the first look sums each closed day up, once
    with django_assert_max_num_queries(6):  # session, staff user, the day summaries, the open days, payments
        days = export(admin_client, "day")
    assert days[0] == ["date", "delivered", "failed", "spend_usd", "stars", "revenue_usd", "margin_usd"]
    assert days[1:] == [
        ["2025-03-01", "2", "1", "0.27", "0", "0.00", "-0.27"],
        ["2025-03-02", "0", "0", "0.00", "0", "0.00", "0.00"],
        ["2025-03-03", "2", "0", "0.24", "0", "0.00", "-0.24"],
        ["2025-03-04", "0", "0", "0.00", "0", "0.00", "0.00"],
        ["2025-03-05", "1", "0", "0.04", "0", "0.00", "-0.04"],
    ]
    assert export(admin_client, "tier") == [
        ["tier", "delivered", "failed", "spend_usd"],
        ["Free", "3", "1", "0.31"],
        ["Pro", "2", "0", "0.24"],
    ]
    users = export(admin_client, "user")
    assert users[0] == ["telegram_id", "username", "first_name", "tier", "delivered", "failed", "spend_usd"]
    assert users[1] == [str(march["ann"].telegram_id), "ann", "Alice", "Free", "2", "0", "0.27"]
    assert [row[1] for row in users[1:]] == ["ann", "cat", "ben"]
    assert export(admin_client, "model") == [
        ["model", "resolution", "delivered", "cache_hits", "failed", "spend_usd", "usd_per_image"],
        ["m-lite", "1K", "1", "0", "0", "0.04", "0.0390"],
        ["m-pro", "2K", "2", "0", "1", "0.27", "0.1340"],
        ["m-pro", "4K", "2", "1", "0", "0.24", "0.1200"],
    ]
    assert admin_client.get("/costs/export/secrets.csv", MARCH).status_code == 404


def test_the_page_links_its_exports_to_the_same_range(admin_client, march):
    page = admin_client.get("/costs/", MARCH).content.decode()
    for table in TABLES:
        assert f"/costs/export/{table}.csv?range=custom&amp;from=2025-03-01&amp;to=2025-03-05" in page


def test_exports_open_in_excel_with_chinese_names_intact(admin_client):
    make(UserFactory(username="", first_name="王小明"), date(2025, 3, 2))
    response = admin_client.get("/costs/export/user.csv", MARCH)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")  # the byte order mark: Excel then reads UTF-8
    assert export(admin_client, "user")[1][2] == "王小明"


def test_user_text_in_exports_cannot_become_a_spreadsheet_formula(admin_client):
    make(UserFactory(username="", first_name="=HYPERLINK(1)"), date(2025, 3, 2))
    assert export(admin_client, "user")[1][2] == "'=HYPERLINK(1)"


def test_a_backwards_or_too_long_range_gets_a_message_not_an_error(admin_client):
    response = admin_client.get("/costs/", {"range": "custom", "from": "2025-03-05", "to": "2025-03-01"})
    page = response.content.decode()
    assert response.status_code == 200 and "must not be after the last" in page
    assert "Showing the last 30 days instead." in page and len(response.context["days"]) == 30

    response = admin_client.get("/costs/", {"range": "custom", "from": "2020-01-01", "to": "2025-01-01"})
    assert response.status_code == 200 and "at most 366 days" in response.content.decode()
    assert len(response.context["days"]) == 30

    response = admin_client.get("/costs/", {"range": "forever", "from": "someday"})
    assert response.status_code == 200 and len(response.context["days"]) == 30

    response = admin_client.get("/costs/export/day.csv", {"range": "custom", "from": "2025-03-05", "to": "2025-03-01"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")


def test_a_report_starting_after_today_with_no_end_is_a_backwards_range(admin_client):
    response = admin_client.get("/costs/", {"from": "2099-01-01"})  # the end defaults to today
    page = response.content.decode()
    assert response.status_code == 200 and "must not be after the last" in page
    assert response.context["last"] == days.today() and len(response.context["days"]) == 30

    response = admin_client.get("/costs/export/day.csv", {"from": "2099-01-01"})
    assert response.status_code == 400 and "must not be after the last" in response.content.decode()


def test_a_90_day_report_lists_weeks_each_linking_to_its_days(admin_client):
    user, today = UserFactory(), days.today()
    make(user, today - timedelta(40), cost="1.0000")
    make(user, today - timedelta(40), cost="0.5000")
    response = admin_client.get("/costs/", {"range": "90"})
    weeks, page = response.context["day_rows"], response.content.decode()
    assert response.context["weekly"] and 13 <= len(weeks) <= 14 and "By week" in page
    assert weeks[0]["day"] > weeks[-1]["day"]  # newest first
    assert sum(week["spend"] for week in weeks) == Decimal("1.5000")
    busy = next(week for week in weeks if week["spend"])
    assert busy["day"] <= today - timedelta(40) <= busy["last"] and (busy["last"] - busy["day"]).days <= 6
    assert f"?range=custom&amp;from={busy['day']}&amp;to={busy['last']}" in page
    assert '<td class="n">$1.50</td>' in page

    response = admin_client.get("/costs/")  # 30 days: a row each
    assert not response.context["weekly"] and len(response.context["day_rows"]) == 30


def test_a_table_sorts_by_the_column_whose_header_is_clicked(admin_client, march):
    page = admin_client.get("/costs/", MARCH).content.decode()
    link = re.search(r'<a href="(\?[^"]*sort=user\.name#user)">User</a>', page).group(1).replace("&amp;", "&")
    response = admin_client.get("/costs/" + link)
    assert [row["name"] for row in response.context["users"]] == ["@ann", "@ben", "@cat"]
    assert 'aria-sort="ascending"><a href="?range=custom&amp;from=2025-03-01&amp;to=2025-03-05&amp;sort=-user.name' in (
        response.content.decode()
    )
    users = admin_client.get("/costs/", {**MARCH, "sort": "-user.name"}).context["users"]
    assert [row["name"] for row in users] == ["@cat", "@ben", "@ann"]
    days = admin_client.get("/costs/", {**MARCH, "sort": "-day.spend"}).context["day_rows"]
    assert [row["day"].day for row in days[:2]] == [1, 3]
    assert len(admin_client.get("/costs/", {**MARCH, "sort": "user.secret"}).context["users"]) == 3  # ignored


def test_the_axis_dates_read_in_the_staff_member_s_language(admin_client, march):
    page = admin_client.get("/costs/", MARCH, headers={"Accept-Language": "zh-hans"}).content.decode()
    dates, _ticks = axes(page.split('<figure class="chart">')[1])
    assert dates == ["3月1日", "3月2日", "3月3日", "3月4日", "3月5日"]


def test_a_daily_budget_is_the_line_the_spend_chart_draws(admin_client, march, settings):
    settings.MONTHLY_BUDGET_USD, settings.DAILY_BUDGET_USD = Decimal("6.20"), Decimal("0.25")
    spend = admin_client.get("/costs/", MARCH).content.decode().split('<figure class="chart">')[1]
    assert "Budget: $0.25 a day" in spend  # the limit botcore enforces, not the month's share of $0.20


def test_revenue_and_margin_count_payments_on_their_day_and_refunds_on_theirs(admin_client, march, settings):
    settings.STARS_USD_RATE = Decimal("0.01")
    PaymentFactory(user=march["ann"], stars=500, paid_at=days.start_of(date(2025, 3, 1)) + timedelta(hours=9))
    refunded = {"status": "refunded", "refunded_at": days.start_of(date(2025, 3, 5)) + timedelta(hours=1)}
    PaymentFactory(user=march["ben"], stars=100, paid_at=days.start_of(date(2025, 3, 3)), **refunded)
    earlier = {"paid_at": days.start_of(date(2025, 2, 20)), "refunded_at": days.start_of(date(2025, 3, 4))}
    PaymentFactory(user=march["cat"], stars=200, status="refunded", **earlier)
    PaymentFactory(user=march["cat"], stars=900, paid_at=days.start_of(date(2025, 3, 6)))  # after the range

    response = admin_client.get("/costs/", MARCH)
    by_day = {row["day"].day: (row["stars"], row["revenue"], row["margin"]) for row in response.context["days"]}
    assert by_day == {
        1: (500, Decimal("5.00"), Decimal("4.7320")),
        2: (0, 0, 0),
        3: (100, Decimal("1.00"), Decimal("0.7600")),
        4: (-200, Decimal("-2.00"), Decimal("-2.00")),
        5: (-100, Decimal("-1.00"), Decimal("-1.0390")),
    }
    totals = response.context["totals"]
    assert (totals["stars"], totals["revenue"], totals["margin"]) == (300, Decimal("3.00"), Decimal("2.4530"))
    page = response.content.decode()
    assert "<b>$3.00</b>revenue (300 Stars)" in page and "<b>$2.45</b>margin" in page
    assert '<td class="n">-200</td><td class="n">-$2.00</td><td class="n">-$2.00</td>' in page

    assert export(admin_client, "day")[1] == ["2025-03-01", "2", "1", "0.27", "500", "5.00", "4.73"]
    api = admin_client.get("/api/costs", MARCH).json()
    assert (api["stars"], api["revenue"], api["margin"]) == (300, 3.0, pytest.approx(2.453))
    assert (api["days"][3]["stars"], api["days"][3]["margin"]) == (-200, -2.0)
    week = admin_client.get("/costs/", {"range": "custom", "from": "2025-01-01", "to": "2025-03-31"}).context
    weeks = {row["day"]: (row["stars"], row["margin"]) for row in week["day_rows"]}
    assert weeks[date(2025, 2, 24)] == (500, Decimal("4.5980"))  # less the spend of Feb 28 too
    assert weeks[date(2025, 2, 17)] == (200, Decimal("2.00"))  # paid then, refunded in March
