"""The dashboard in a real browser (Debian's Chromium through Playwright): what staff do most."""

import os
import shutil
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts import payments as sales
from accounts.models import AuditEntry, Ban, Broadcast, CreditPack, Payment, TelegramUser, Tier
from botcore import generations
from botcore.models import Generation
from tests.factories import BanFactory, KeywordFactory, TierFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # from package-lock.json; scripts/test runs `npm ci`
PASSWORD = "correct horse battery staple"
SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


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
def size():
    """The screen the browser has: a desktop's, unless a test parametrizes `size` with a key of SIZES."""
    return "desktop"


@pytest.fixture
def page(chromium, live_server, request, size):
    context = chromium.new_context(base_url=live_server.url, locale="en-US", **SIZES[size])
    page = context.new_page()
    page.set_default_timeout(10_000)
    # Chromium reports what the content security policy blocked on the console: every page a test
    # visits must work without anything being blocked.
    blocked = []
    page.on("console", lambda message: "Content Security Policy" in message.text and blocked.append(message.text))
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()
    assert blocked == []


@pytest.fixture
def signed_in(page, transactional_db):
    get_user_model().objects.create_user("olivia", password=PASSWORD, is_staff=True)
    page.goto("/")
    page.fill("input[name=username]", "olivia")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/")  # the overview, not the sign-in page's "?next=/"
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
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Ban").click()  # asked first; "Cancel" sends nothing
    assert questions == ["Ban @spammer? The bot will refuse their requests until the ban ends."]
    assert not Ban.objects.exists()
    page.once("dialog", lambda dialog: dialog.accept())
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


@pytest.fixture
def images_this_week(transactional_db):
    """Made before anyone signs in: the overview then sums up the closed days with them in."""
    user = UserFactory()
    now = timezone.now()
    for days_ago, cost in [(0, "0.134"), (1, "0.24"), (1, "0.134"), (5, "0.134")]:
        Generation.objects.create(
            user=user,
            tier=user.tier.name,
            chat_id=1,
            prompt="p",
            status="delivered",
            cost_usd=cost,
            created_at=now - timedelta(days=days_ago),
        )


def test_staff_open_the_cost_report_and_see_its_charts(images_this_week, signed_in):
    page = signed_in
    page.get_by_role("link", name="Costs").click()
    spend_line = page.locator("svg polyline, svg path").first
    spend_line.wait_for()
    box = page.locator("svg").first.bounding_box()
    assert box["width"] > 300 and box["height"] > 100  # drawn, at a readable size
    assert page.locator("svg rect").count() >= 30  # a bar per day of the 30-day range
    expect(page.locator(".card", has_text="spent").locator("b")).to_have_text("$0.64")
    expect(page.locator(".card", has_text="images delivered").locator("b")).to_have_text("4")


def test_staff_send_a_broadcast_to_one_tier_and_watch_it_finish(signed_in, bot_settings, tg, monkeypatch):
    gold = TierFactory(name="gold")
    alice, bob, carol = [UserFactory(telegram_id=i, tier=gold) for i in (101, 102, 103)]
    UserFactory(telegram_id=104)  # on another tier: not a recipient
    tg.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")  # the first recipient: alice
    # Hold the sends after alice's until the page has been seen mid-way, so it must refresh by itself.
    release, send_message = threading.Event(), tg._m_sendMessage

    def held_until_released(params, files):
        release.wait(10)
        return send_message(params, files)

    monkeypatch.setattr(tg, "_m_sendMessage", held_until_released)
    text = "<b>Hi</b> & welcome"
    page = signed_in
    page.get_by_role("link", name="Broadcast", exact=True).click()
    page.get_by_label("Message").fill(text)
    page.get_by_label("To").select_option(label="gold")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("This goes to 3 users on tier gold.")).to_be_visible()
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page.get_by_text("Sending started.")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Sending", timeout=10_000)  # "Queued" until the thread takes it
    expect(page.locator("pre")).to_have_text(text)  # shown as written, not as markup
    expect(page.locator("pre b")).to_have_count(0)
    release.set()
    expect(page.locator("#status")).to_have_text("Done", timeout=10_000)  # by the page's own refresh, every 2 s
    expect(page.locator("#sent")).to_have_text("2 / 3")
    expect(page.locator(".card", has_text="had blocked the bot").locator("b")).to_have_text("1")

    received = {
        call.params["chat_id"]: call.params["text"] for call in tg.calls_of("sendMessage") if call.status == 200
    }
    assert received == {bob.telegram_id: text, carol.telegram_id: text}
    assert not TelegramUser.objects.get(pk=alice.pk).is_active


def test_staff_delete_a_tier_and_move_its_users(signed_in, default_tiers):
    free = Tier.objects.get(name="free")
    users = UserFactory.create_batch(2, tier=Tier.objects.get(name="premium"))
    page = signed_in
    page.get_by_role("link", name="Tiers").click()
    premium_row = page.locator("tr", has=page.get_by_role("link", name="premium", exact=True))
    premium_row.get_by_role("link", name="Delete").click()
    expect(page.locator("h1")).to_have_text("Delete tier “premium”?")
    expect(page.get_by_text("2 users are on this tier.")).to_be_visible()
    page.get_by_label("Move its users to").select_option(label="free")
    page.get_by_role("button", name="Delete").click()

    expect(page.get_by_text("Tier “premium” deleted.")).to_be_visible()
    expect(page.get_by_role("link", name="premium", exact=True)).to_have_count(0)
    free_row = page.locator("tr", has=page.get_by_role("link", name="free", exact=True))
    expect(free_row.locator("td").nth(6)).to_have_text("2")  # the Users column
    assert not Tier.objects.filter(name="premium").exists()
    assert set(TelegramUser.objects.filter(tier=free).values_list("pk", flat=True)) == {user.pk for user in users}


def test_staff_refund_a_payment_after_seeing_what_it_takes_back(signed_in, bot_settings, tg):
    alice = UserFactory(telegram_id=601, username="alice")
    pack = CreditPack.objects.create(name="Starter", stars=50, images=3)
    offer = sales.Offer.of(pack).payload
    tg.record_star_payment(alice.telegram_id, offer, pack.stars, "stxTest1")
    sales.credit(user=alice, charge_id="stxTest1", payload=offer, stars=pack.stars)
    page = signed_in
    page.get_by_role("link", name="Payments").click()
    page.get_by_role("link", name="Refund…").click()
    expect(page.get_by_text("The 3 credits of this payment not used yet are taken back")).to_be_visible()
    page.get_by_role("button", name="Refund 50 Stars").click()

    expect(page.get_by_text("Refunded 50 Stars; 3 unused credits taken back.")).to_be_visible()
    expect(page.get_by_role("link", name="Refund…")).to_have_count(0)
    assert Payment.objects.get().status == "refunded" and len(tg.calls_of("refundStarPayment")) == 1


def test_staff_open_the_api_docs_and_the_admin_under_the_content_security_policy(signed_in):
    page = signed_in
    assert "script-src 'self'" in page.request.get("/").headers["content-security-policy"]
    page.get_by_role("link", name="API").click()
    expect(page.locator(".opblock").first).to_be_visible()  # Swagger UI ran and listed the endpoints
    page.goto("/admin/")
    expect(page.locator("h1")).to_have_text("Site administration")


def assert_accessible(page):
    """axe-core finds nothing serious or critical on the page as it is now (WCAG A/AA and best practices)."""
    if not AXE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE} is missing: scripts/test installs it with `npm ci`")
        pytest.skip("axe-core is not installed (npm ci)")
    # Evaluated rather than added as a <script>: the content security policy refuses inline scripts,
    # and the DevTools protocol's evaluation is outside its reach.
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert problems == [], f"{page.url}: {problems}"


def scrolls_sideways(page):
    """Whether the page is wider than the screen, so that a reader must scroll it sideways."""
    return page.evaluate("document.documentElement.scrollWidth") > page.viewport_size["width"]


def open_menu(page):
    """On a phone the menu is folded behind its "Menu" button: tap it open. A wider screen shows it all."""
    button = page.locator("label[for=menu-toggle]")
    if button.is_visible():
        button.tap()


def lines_per_menu_label(page):
    """How many lines each navigation link's label takes on screen."""
    return page.evaluate("""() => [...document.querySelectorAll("header nav a")].map(link => {
        const range = document.createRange();
        range.selectNodeContents(link);
        return new Set([...range.getClientRects()].map(box => Math.round(box.top))).size;
    })""")


@pytest.fixture
def a_week_of_work(transactional_db):
    """A bit of everything the dashboard shows, some of it long: one user's week, a ban, a keyword, a broadcast,
    a credit pack bought."""
    gold = TierFactory(name="gold")
    alice = UserFactory(username="alice", tier=gold)
    BanFactory(user=UserFactory(username="spammer"), reason="sent spam to the bot")
    long_prompt = "a lighthouse on a cliff at dusk, " * 8 + "https://example.com/" + "very-long-reference-" * 6
    delivered, failed = (
        Generation.objects.create(
            user=alice, tier="gold", chat_id=1, prompt=prompt, status=status, cost_usd=cost, model="gemini-3-pro"
        )
        for prompt, status, cost in [(long_prompt, "delivered", "0.134"), ("a cat", "failed", "0")]
    )
    failed.error_code, failed.error_message = "timeout", "Gemini did not answer within 120 seconds"
    failed.save()
    keyword = KeywordFactory(phrase="fake passport", note="documents")
    broadcast = Broadcast.objects.create(
        text="Maintenance tonight, 22:00 to 23:00 UTC.", tier=gold, audience="gold", status="done", total=1, sent=1
    )
    AuditEntry.objects.create(
        actor_name="olivia", action="user.tier", target="@alice", before={"tier": "free"}, after={"tier": "gold"}
    )
    month = CreditPack.objects.create(name="Gold month and 50 images", stars=300, images=50, tier=gold, tier_days=30)
    offer = sales.Offer.of(month).payload
    payment, _new = sales.credit(user=alice, charge_id="stxTest" + "0123456789" * 8, payload=offer, stars=300)
    return {
        "overview": reverse("dashboard:overview"),
        "users": reverse("dashboard:users"),
        "user": reverse("dashboard:user", args=[alice.pk]),
        "generations": reverse("dashboard:generations"),
        "generation": reverse("dashboard:generation", args=[delivered.pk]),
        "costs": reverse("dashboard:costs"),
        "analytics": reverse("dashboard:analytics"),
        "tiers": reverse("dashboard:tiers"),
        "tier": reverse("dashboard:tier", args=[gold.pk]),
        "packs": reverse("dashboard:packs"),
        "pack": reverse("dashboard:pack", args=[month.pk]),
        "payments": reverse("dashboard:payments"),
        "payment": reverse("dashboard:payment", args=[payment.pk]),
        "keywords": reverse("dashboard:keywords"),
        "keyword": reverse("dashboard:keyword", args=[keyword.pk]),
        "bans": reverse("dashboard:bans"),
        "broadcasts": reverse("dashboard:broadcasts"),
        "broadcast": reverse("dashboard:broadcast", args=[broadcast.pk]),
        "audit": reverse("dashboard:audit"),
    }


@pytest.mark.parametrize("size", SIZES)
def test_every_dashboard_page_fits_the_screen_and_is_accessible(a_week_of_work, signed_in, size, request):
    page, problems = signed_in, {}
    for name, path in a_week_of_work.items():
        page.goto(path)
        assert urlsplit(page.url).path == path  # the page itself, not the sign-in page
        page.screenshot(path=ARTIFACTS / f"{request.node.originalname}-{size}-{name}.png", full_page=True)
        if scrolls_sideways(page):
            problems.setdefault(name, []).append(f"{page.evaluate('document.documentElement.scrollWidth')} px wide")
        try:
            assert_accessible(page)
        except AssertionError as failure:
            problems.setdefault(name, []).append(str(failure))
    assert problems == {}


@pytest.mark.parametrize("size", ["phone"])
def test_staff_on_a_phone_open_the_menu_go_to_users_and_sign_out(signed_in):
    page = signed_in
    expect(page.get_by_role("link", name="Users")).to_be_hidden()  # folded away, leaving the page its width
    page.get_by_text("Menu", exact=True).tap()
    page.get_by_role("link", name="Users").tap()
    expect(page.locator("h1")).to_have_text("Users")
    expect(page.get_by_role("link", name="Users")).to_be_hidden()  # a new page starts with the menu shut
    page.get_by_text("Menu", exact=True).tap()
    expect(page.get_by_role("link", name="Users")).to_have_attribute("aria-current", "page")
    page.get_by_role("button", name="Sign out").tap()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # back at the sign-in page, not the admin's
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert not scrolls_sideways(page)


@pytest.mark.parametrize("size", SIZES)
def test_staff_switch_the_dashboard_to_chinese_and_back(signed_in, size, request):
    page = signed_in
    open_menu(page)
    page.locator("select[name=language]").select_option(label="繁體中文")
    page.locator("form.language button").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hant")
    open_menu(page)
    expect(page.get_by_role("link", name="使用者")).to_be_visible()
    expect(page.get_by_role("button", name="登出")).to_be_visible()
    page.screenshot(path=ARTIFACTS / f"{request.node.originalname}-{size}-zh-hant.png", full_page=True)
    assert set(lines_per_menu_label(page)) == {1}
    assert not scrolls_sideways(page)
    assert_accessible(page)

    page.locator("select[name=language]").select_option(label="English")
    page.locator("form.language button").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    open_menu(page)
    expect(page.get_by_role("link", name="Users")).to_be_visible()


@pytest.mark.parametrize("size", ["phone"])
def test_the_sign_in_page_offers_the_languages_and_fits_a_phone(page):
    page.goto("/")
    languages = page.locator("select[name=language] option")
    expect(languages).to_have_text(["English", "简体中文", "繁體中文"])
    page.locator("select[name=language]").select_option(label="繁體中文")
    page.locator("form.language button").click()
    expect(page.get_by_role("heading", name="登入")).to_be_visible()
    assert not scrolls_sideways(page)
    assert_accessible(page)


def test_a_keyboard_user_skips_the_menu_and_sees_where_the_focus_is(signed_in):
    page = signed_in
    page.goto(reverse("dashboard:users"))
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # shown once focused, though hidden above the page until then
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Search")).to_be_focused()  # the page's first field, past the whole menu
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
