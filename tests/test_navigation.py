"""The dashboard's navigation, drawn from one list: every link leads somewhere a staff member may go."""

import re

import pytest
from django.contrib.auth import get_user_model

from dashboard.templatetags.navigation import LINKS

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_user("olivia", password="x", is_staff=True))
    return client


def links_on(page):
    """The page's header, where the navigation is."""
    return re.findall(r"<header>.*</header>", page, re.S)[0]


def test_every_navigation_link_opens_a_page_for_staff(staff_client):
    header = links_on(staff_client.get("/").content.decode())
    hrefs = re.findall(r'<a href="([^"]+)"', header)
    assert len(hrefs) == len(LINKS)
    for href in hrefs:
        assert staff_client.get(href).status_code == 200, href


def test_the_current_section_is_marked_on_its_pages(staff_client):
    overview = links_on(staff_client.get("/").content.decode())
    assert re.findall(r'href="([^"]+)" aria-current="page"', overview) == ["/"]
    tiers = links_on(staff_client.get("/tiers/new/").content.decode())
    assert re.findall(r'href="([^"]+)" aria-current="page"', tiers) == ["/tiers/"]


def test_the_labels_are_translated(staff_client):
    header = links_on(staff_client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hant").content.decode())
    assert "使用者" in header and "資料（管理後台）" in header
