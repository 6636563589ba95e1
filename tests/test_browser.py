"""The dashboard in a real browser (Debian's Chromium through Playwright): what staff do most."""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from botcore import generations
from botcore.models import Generation
from tests.factories import UserFactory

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def chromium():
    # Playwright's sync API runs an event loop on this thread; the test's own ORM calls are still
    # plain synchronous ones, which Django would otherwise refuse next to a running loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(chromium, live_server, request):
    context = chromium.new_context(base_url=live_server.url, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()


@pytest.fixture
def signed_in(page, transactional_db):
    get_user_model().objects.create_user("olivia", password=PASSWORD, is_staff=True)
    page.goto("/")
    page.fill("input[name=username]", "olivia")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/")
    return page


def test_staff_sign_in_and_see_the_overview(signed_in):
    assert signed_in.locator("h1").first.inner_text() == "Today"
    assert signed_in.get_by_role("link", name="Users").is_visible()


def test_staff_find_a_user_and_ban_them(signed_in):
    user = UserFactory(telegram_id=4242, username="spammer")
    page = signed_in
    page.get_by_role("link", name="Users").click()
    page.fill("input[name=q]", "spammer")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="@spammer").first.click()
    page.fill("[name=reason]", "sent spam to the bot")
    page.get_by_role("button", name="Ban").click()
    assert page.get_by_text("sent spam to the bot").first.is_visible()
    assert page.get_by_role("button", name="Lift ban").is_visible()
    with pytest.raises(generations.Refusal, match="banned"):
        generations.request(identity=generations.Identity(telegram_id=user.telegram_id), chat_id=1, prompt="a cat")


def test_staff_add_a_keyword_and_test_a_prompt_against_it(signed_in):
    page = signed_in
    page.get_by_role("link", name="Keywords").click()
    page.fill("[name=phrase]", "fake passport")
    page.get_by_role("button", name="Add").click()
    page.fill("#prompt", "make me a FAKE pass-port please")
    page.get_by_role("button", name="Test").click()
    assert page.locator("#test-result").inner_text().startswith("Refused: it matches “fake passport”.")


def test_staff_open_the_cost_report_and_see_its_charts(signed_in):
    user = UserFactory()
    now = timezone.now()
    for days_ago, cost in [(0, "0.134"), (1, "0.24"), (1, "0.134"), (5, "0.134")]:
        Generation.objects.create(
            user=user,
            chat_id=1,
            prompt="p",
            status="delivered",
            cost_usd=cost,
            created_at=now - timedelta(days=days_ago),
        )
    page = signed_in
    page.get_by_role("link", name="Costs").click()
    spend_line = page.locator("svg polyline, svg path").first
    spend_line.wait_for()
    box = page.locator("svg").first.bounding_box()
    assert box["width"] > 300 and box["height"] > 100  # drawn, at a readable size
    assert page.locator("svg rect").count() >= 30  # a bar per day of the 30-day range
    assert "$0.64" in page.content()
