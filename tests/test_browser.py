"""The dashboard in a real browser (Debian's Chromium through Playwright): what staff do most."""

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

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
