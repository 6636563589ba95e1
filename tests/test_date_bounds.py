"""Days and moments far outside the years the log can hold are refused with the reason, on the
dashboard and in the API, in any time zone: near the calendar's ends a day's start in TIME_ZONE
is no longer a datetime, and the staff member would get a server error instead."""

import pytest

from botcore.models import Generation
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_day_out_of_range_on_the_generation_log_is_reported_and_left_out(admin_client, settings):
    settings.TIME_ZONE = "Asia/Taipei"  # UTC+8: the 1st of January of year 1 starts before year 1 in UTC
    user = UserFactory()
    Generation.objects.create(user=user, chat_id=user.telegram_id, prompt="a cat")
    for day, reason in [
        ({"from": "0001-01-01"}, "From: Ensure this value is greater than or equal to 2000-01-01."),
        ({"to": "9999-12-31"}, "To: Ensure this value is less than or equal to 2099-12-31."),
    ]:
        response = admin_client.get("/generations/", day)
        assert response.status_code == 200 and reason in response.content.decode()
        assert len(response.context["generations"]) == 1


def test_a_cost_report_ending_out_of_range_falls_back_with_the_reason(admin_client):
    response = admin_client.get("/costs/", {"to": "9999-12-31"})
    page = response.content.decode()
    assert response.status_code == 200 and "less than or equal to 2099-12-31" in page
    assert "Showing the last 30 days instead." in page and len(response.context["days"]) == 30

    response = admin_client.get("/costs/export/day.csv", {"to": "9999-12-31"})
    assert response.status_code == 400 and "less than or equal to 2099-12-31" in response.content.decode()

    response = admin_client.get("/api/costs", {"to": "9999-12-31"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "to"]


def test_an_api_moment_out_of_range_is_a_422_naming_the_field(admin_client, settings):
    settings.TIME_ZONE = "Asia/Taipei"
    response = admin_client.get("/api/generations", {"since": "0001-01-01T00:00:00"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "since"]

    settings.TIME_ZONE = "America/New_York"  # UTC-5: the last second of 9999 ends after it in UTC
    response = admin_client.get("/api/generations", {"until": "9999-12-31T23:59:59"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "until"]
