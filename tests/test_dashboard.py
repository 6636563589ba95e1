import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from botcore.models import Generation
from dashboard import reports
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/login/?next=/")


def test_signed_in_non_staff_is_forbidden(client):
    client.force_login(get_user_model().objects.create_user("visitor", password="x"))
    assert client.get("/").status_code == 403


def test_staff_sees_todays_figures_with_user_text_escaped(admin_client):
    user = UserFactory(username="mallory")
    Generation.objects.create(
        user=user, chat_id=1, prompt="<script>alert(1)</script>", status="delivered", cost_usd="0.134"
    )
    Generation.objects.create(user=user, chat_id=1, prompt="a cat", status="failed", error_code="safety")
    page = admin_client.get("/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "$0.13" in page and "The provider refused the prompt or image as unsafe." in page


def test_staff_signs_in_with_the_account_made_on_first_run(client, capsys):
    call_command("ensure_staff")
    password = capsys.readouterr().out.split("password: ")[1].split()[0]
    response = client.post("/login/", {"username": "admin", "password": password}, follow=True)
    assert response.status_code == 200 and b"Latest generations" in response.content
    call_command("ensure_staff")
    assert "Sign in at" in capsys.readouterr().out
    assert get_user_model().objects.count() == 1


def test_overview_shows_success_rate_failures_by_kind_latency_and_budget(admin_client, settings):
    settings.MONTHLY_BUDGET_USD = Decimal("10")
    user = UserFactory(username="ada")
    for latency in [3_000] * 18 + [40_000, 100_000]:
        Generation.objects.create(
            user=user, chat_id=1, prompt="ok", status="delivered", cost_usd="0.25", total_latency_ms=latency
        )
    for code in ["safety", "safety", "timeout"]:
        Generation.objects.create(user=user, chat_id=1, prompt="no", status="failed", error_code=code)

    figures = reports.overview()
    assert figures["today"]["success_rate"] == 20 / 23
    assert (figures["today"]["p50_ms"], figures["today"]["p95_ms"]) == (5_000, 45_000)
    assert figures["today"]["failures"][0] == {"error_code": "safety", "count": 2}
    assert figures["top_users"][0]["images"] == 20

    page = admin_client.get("/").content.decode()
    assert "87%" in page and "$5.00 of the $10.00 budget (50%)" in page
    assert "The provider refused the prompt or image as unsafe.</span> 2" in page and "@ada" in page


def test_staff_reading_traditional_chinese_get_the_dashboard_in_it(admin_client):
    Generation.objects.create(user=UserFactory(), chat_id=1, prompt="a cat", status="delivered")
    page = admin_client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hant").content.decode()
    assert "今天" in page and "使用者" in page and "已送出" in page


@pytest.mark.parametrize("asked", ["zh-CN", "zh-Hans", "zh"])
def test_staff_reading_simplified_chinese_get_the_dashboard_in_it(admin_client, asked):
    Generation.objects.create(user=UserFactory(), chat_id=1, prompt="a cat", status="delivered")
    page = admin_client.get("/", HTTP_ACCEPT_LANGUAGE=asked).content.decode()
    assert '<html lang="zh-hans">' in page
    assert "今天" in page and "用户" in page and "已送达" in page and "使用者" not in page


def test_everything_on_the_overview_leads_to_its_user_or_generation(admin_client):
    ada = UserFactory(username="ada")
    delivered = Generation.objects.create(user=ada, chat_id=1, prompt="a lighthouse", status="delivered")
    failed = Generation.objects.create(
        user=ada, chat_id=1, prompt="a storm", status="failed", error_code="timeout", error_message="no answer"
    )
    page = admin_client.get("/").content.decode()
    top_users = page.split("Top users today")[1].split("Newest errors")[0]
    assert f'<a href="/users/{ada.pk}/">@ada</a>' in top_users
    errors = page.split("Newest errors")[1].split("Latest generations")[0]
    assert f'<a href="/generations/{failed.pk}/">' in errors and f'<a href="/users/{ada.pk}/">@ada</a>' in errors
    assert "The provider took too long to answer." in errors and ">timeout<" not in errors
    latest = page.split("Latest generations")[1]
    assert f'<a href="/generations/{delivered.pk}/">a lighthouse</a>' in latest
    assert f'<a href="/generations/{failed.pk}/">a storm</a>' in latest
    assert f'<a href="/users/{ada.pk}/">@ada</a>' in latest and " UTC</td>" in latest  # times carry their zone


def test_the_overview_charts_the_last_30_days_of_spend_against_the_budget(admin_client, settings):
    settings.MONTHLY_BUDGET_USD = Decimal("300")
    Generation.objects.create(user=UserFactory(), chat_id=1, prompt="p", status="delivered", cost_usd="2.40")
    chart = admin_client.get("/").content.decode().split('<figure class="chart">')[1].split("</figure>")[0]
    assert "Spend per day, last 30 days" in chart and 'role="img"' in chart
    assert "$2.40 in all" in chart  # the summary a screen reader reads
    assert re.search(r"Budget: \$(9\.68|10\.00|10\.34|10\.71) a day", chart)  # $300 over the month's days
    assert chart.count("<tr><td>") == 30  # the values, day by day, for touch and screen readers
