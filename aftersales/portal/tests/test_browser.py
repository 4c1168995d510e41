"""End to end in a real Chromium (Debian's /usr/bin/chromium driven by Playwright; never a downloaded
browser). Set AFTERSALES_SCREENSHOTS=1 to also save the main pages into docs/screenshots/."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from aftersales.cases import services
from aftersales.cases.models import Case
from aftersales.cases.services import LineRequest, install_default_reason_codes
from aftersales.logistics import services as logistics_services
from aftersales.sla import services as sla_services
from aftersales.sla.models import SlaClock, SlaPolicy
from aftersales.testing.factories import actor_for_user, buyer_of, make_buyer, make_order, make_staff, make_store

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "pw-for-tests-only"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium); .ci/run installs it"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; Django's ORM in the test itself is safe.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _page(browser, locale: str = "zh-CN", mobile: bool = False):
    viewport = {"width": 412, "height": 915} if mobile else {"width": 1366, "height": 900}
    context = browser.new_context(locale=locale, viewport=viewport)
    context.set_default_timeout(15_000)
    return context.new_page()


def shot(page, name: str) -> None:
    if os.environ.get("AFTERSALES_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")


def _png(tmp_path: Path) -> Path:
    path = tmp_path / "scratch.png"
    Image.new("RGB", (240, 180), (210, 60, 40)).save(path, format="PNG")
    return path


def _shop(**order_attributes):
    store = make_store(name="Demo 旗舰店")
    install_default_reason_codes(store=store)
    buyer = make_buyer(store, with_login=True)
    order = make_order(store, buyer, **order_attributes)
    return store, buyer, order


def _delivery_log(store, admin) -> None:
    """A few webhook deliveries as the log would hold them after a day of traffic (for the screenshot)."""
    import datetime as dt

    from aftersales.notifications import services as notification_services
    from aftersales.notifications.models import Delivery, DeliveryAttempt, OutboxEvent

    actor = actor_for_user(admin, store)
    erp = notification_services.create_endpoint(actor=actor, url="https://erp.example.cn/hooks/aftersales",
                                                description="ERP")
    crm = notification_services.create_endpoint(actor=actor, url="https://crm.example.cn/in",
                                                event_types=["case.created", "case.refunded"])
    now = dt.datetime.now(dt.UTC)
    rows = [(erp, "case.created", "sent", 1, 200, 42), (crm, "case.created", "sent", 1, 200, 118),
            (erp, "case.decided", "sent", 1, 200, 37), (crm, "case.refunded", "pending", 2, 503, 5004),
            (erp, "sla.breached", "failed", 9, 500, 61)]
    for minutes, (endpoint, kind, status, attempts, code, ms) in enumerate(rows):
        at = now - dt.timedelta(minutes=50 - 10 * minutes)
        event = OutboxEvent.objects.create(store=store, type=kind, payload={}, created_at=at, dispatched_at=at)
        delivery = Delivery.objects.create(store=store, event=event, channel="webhook", target=f"endpoint:{endpoint.pk}",
                                           endpoint=endpoint, status=status, attempts=attempts, created_at=at,
                                           next_attempt_at=at + dt.timedelta(minutes=4))
        DeliveryAttempt.objects.create(store=store, delivery=delivery, attempted_at=at, duration_ms=ms,
                                       response_status=code, succeeded=code == 200)


def _status(case_id: int) -> str:
    return Case.objects.get(pk=case_id).status


def test_a_buyer_files_a_return_with_a_photo_and_follows_it_to_the_refund(browser, live_server, tmp_path):
    store, buyer, order = _shop()
    shop_side = actor_for_user(make_staff(store, "supervisor"), store)
    logistics_services.create_warehouse(actor=actor_for_user(make_staff(store, "admin"), store), code="main",
                                        name="Main warehouse", contact_name="Wang", phone="021-55550000",
                                        province="上海市", city="上海市", address="浦东新区 1 号", is_default=True)
    page = _page(browser, locale="en-US", mobile=True)
    sign_in(page, live_server.url, buyer.user.username)
    page.click(f"text=Order {order.external_id}")
    page.click("text=Ask for a return, refund, exchange or repair")
    line = order.lines.order_by("line_no")[0]
    page.select_option("#kind", "return_refund")
    page.fill(f"#qty_{line.pk}", "1")
    page.select_option("#reason", "quality")
    page.fill("#description", "The seam tore on the first wash.")
    page.set_input_files("#photos", str(_png(tmp_path)))
    page.wait_for_selector("#photo-previews img")
    page.wait_for_selector("#preview p")
    page.click("button:has-text('Submit request')")
    page.wait_for_selector("#case-status")
    case = Case.objects.get(order=order)
    assert page.locator("#case-status").inner_text() == "Waiting for the shop's review"
    assert page.locator(".previews img").count() == 1

    services.transition_case(actor=shop_side, case_id=case.pk, action="approve")
    page.reload()
    assert "浦东新区 1 号" in page.locator(".return-panel").inner_text()
    page.select_option("#ship_return-carrier", "SF")
    page.fill("#ship_return-tracking", "SF1234567890123")
    page.click("button:has-text('I have shipped the goods')")
    page.wait_for_selector("text=Return on its way")
    assert _status(case.pk) == "return_in_transit"

    for action, outcome in (("mark_received", None), ("start_inspection", None), ("record_inspection", "passed"),
                            ("refund", None)):
        services.transition_case(actor=shop_side, case_id=case.pk, action=action, outcome=outcome)
    page.reload()
    assert page.locator("#case-status").inner_text() == "Refunded"
    assert page.locator("#now-words").inner_text() == "Your refund has been paid."
    page.check("input[name=rating][value='5']")
    page.click("button:has-text('Send rating')")
    page.wait_for_selector("text=Thank you for your rating.")
    assert Case.objects.get(pk=case.pk).rating == 5


def test_an_agent_works_a_case_from_the_queue_to_the_end(browser, live_server):
    store, buyer, order = _shop()
    supervisor = make_staff(store, "supervisor", username="lead-wang")
    line = order.lines.order_by("line_no")[0]
    case = services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[LineRequest(line.pk, 1)], reason_code="quality")
    page = _page(browser, locale="en-US")
    sign_in(page, live_server.url, supervisor.username)
    page.wait_for_selector("h1:has-text('Queue')")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_selector("#case-status")
    assert page.url.endswith(f"/console/cases/{case.pk}/")

    def act(label: str, expected: str) -> None:
        page.click(f"#actions-h ~ form button:has-text('{label}')")
        page.wait_for_function("s => document.querySelector('#case-status').innerText === s", arg=expected)

    act("Approve", "Waiting for the buyer to send the goods back")
    services.transition_case(actor=buyer_of(buyer), case_id=case.pk, action="ship_return",
                             payload={"carrier": "SF", "tracking_number": "SF0000001"})
    page.reload()
    act("Mark received", "Goods received by the shop")
    act("Start inspection", "Inspecting")
    page.select_option("#record_inspection-outcome", "passed")
    act("Record inspection", "Refund in progress")
    act("Refund", "Refunded")
    act("Close", "Closed")
    assert _status(case.pk) == "closed"
    assert Case.objects.get(pk=case.pk).refund_amount is not None


def test_changes_made_on_the_server_appear_on_open_pages_without_a_reload(browser, live_server, settings):
    settings.AFTERSALES_LIVE_POLL_SECONDS = 1
    store, buyer, order = _shop()
    supervisor = make_staff(store, "supervisor", username="lead-live")
    shop_side = actor_for_user(supervisor, store)
    line = order.lines.order_by("line_no")[0]
    case = services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[LineRequest(line.pk, 1)], reason_code="quality")
    buyer_page = _page(browser, locale="en-US", mobile=True)
    sign_in(buyer_page, live_server.url, buyer.user.username)
    buyer_page.goto(f"{live_server.url}/portal/cases/{case.pk}/")
    agent_page = _page(browser, locale="en-US")
    sign_in(agent_page, live_server.url, supervisor.username)
    agent_page.goto(f"{live_server.url}/console/cases/{case.pk}/")
    # A mark on each window: a reload would wipe it.
    for page in (buyer_page, agent_page):
        page.evaluate("window.notReloaded = true")

    services.post_message(actor=shop_side, case_id=case.pk, body="Checking with the warehouse", visibility="internal")
    services.post_message(actor=shop_side, case_id=case.pk, body="Please keep the original box")
    services.transition_case(actor=shop_side, case_id=case.pk, action="approve")
    services.post_message(actor=buyer_of(buyer), case_id=case.pk, body="Will do, thanks")

    buyer_page.wait_for_function("s => document.querySelector('#case-status').innerText === s",
                                 arg="Waiting for the buyer to send the goods back")
    buyer_page.wait_for_selector("#conversation-list :text('Will do, thanks')")
    bodies = [text.splitlines()[-1] for text in buyer_page.locator("#conversation-list .m").all_inner_texts()]
    assert bodies == ["Please keep the original box", "Will do, thanks"]
    assert "Please keep the original box" in buyer_page.locator("#conversation-list").inner_text()
    assert "Checking with the warehouse" not in buyer_page.content()
    assert buyer_page.locator("#now-words").inner_text() == (
        "Approved. Please send the goods back and enter the carrier and tracking number below.")
    assert "Approve → Waiting for the buyer to send the goods back" in buyer_page.locator("#timeline-list").inner_text()

    agent_page.wait_for_selector("#conversation-list :text('Will do, thanks')")
    assert "Checking with the warehouse" in agent_page.locator("#conversation-list").inner_text()
    agent_page.wait_for_function("s => document.querySelector('#case-status').innerText === s",
                                 arg="Waiting for the buyer to send the goods back")
    assert agent_page.locator("#case-actions button:has-text('Approve')").count() == 0
    assert [page.evaluate("window.notReloaded === true") for page in (buyer_page, agent_page)] == [True, True]


def test_the_queue_shows_a_new_case_without_a_reload(browser, live_server, settings):
    settings.AFTERSALES_QUEUE_POLL_SECONDS = 1
    store, buyer, order = _shop()
    agent = make_staff(store, "agent", username="agent-queue")
    line = order.lines.order_by("line_no")[0]
    first = services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                 lines=[LineRequest(line.pk, 1)], reason_code="quality")
    page = _page(browser, locale="en-US")
    sign_in(page, live_server.url, agent.username)
    page.wait_for_selector(f"tr[data-href='/console/cases/{first.pk}/']")
    page.evaluate("window.notReloaded = true")
    other = make_order(store, buyer)
    second = services.create_case(actor=buyer_of(buyer), kind="refund_only", order_id=other.pk,
                                  lines=[LineRequest(other.lines.order_by("line_no")[0].pk, 1)], reason_code="quality")
    page.wait_for_selector(f"tr[data-href='/console/cases/{second.pk}/']")
    assert page.locator("#queue-rows tr").count() == 2
    assert page.evaluate("window.notReloaded === true")


def test_a_guest_reaches_an_order_with_a_one_time_code(browser, live_server, settings):
    settings.AFTERSALES_SHOW_GUEST_CODES = True
    _store, buyer, order = _shop()
    page = _page(browser, locale="en-US", mobile=True)
    page.goto(f"{live_server.url}/portal/guest/")
    page.fill("#order_number", order.external_id)
    page.fill("#contact", buyer.email)
    page.click("button:has-text('Send me a code')")
    code = page.locator("#demo-code").inner_text()
    assert re.fullmatch(r"\d{6}", code)
    page.fill("#code", code)
    page.click("button:has-text('Open my order')")
    page.wait_for_selector(f"h1:has-text('Order {order.external_id}')")


def test_the_language_follows_the_browser_and_can_be_switched(browser, live_server):
    _store, buyer, _order = _shop()
    page = _page(browser, locale="zh-CN")
    sign_in(page, live_server.url, buyer.user.username)
    page.wait_for_selector("h1:has-text('我的订单')")
    page.select_option("#language-select", "en")
    page.wait_for_selector("h1:has-text('My orders')")
    assert page.locator("html").get_attribute("lang") == "en"


def test_a_buyer_of_another_store_is_refused(browser, live_server):
    _store, _buyer, order = _shop()
    stranger = make_buyer(make_store(), with_login=True)
    page = _page(browser, locale="en-US")
    assert stranger.user is not None
    sign_in(page, live_server.url, stranger.user.username)
    page.wait_for_selector("h1:has-text('My orders')")
    response = page.goto(f"{live_server.url}/portal/orders/{order.pk}/")
    assert response is not None and response.status == 404
    assert page.locator(".error-text").inner_text() == "Not found, or not yours to see."
    assert order.external_id not in page.content()



@pytest.mark.skipif(os.environ.get("AFTERSALES_SCREENSHOTS") != "1", reason="set AFTERSALES_SCREENSHOTS=1 to refresh docs/screenshots")
def test_screenshots_of_the_main_pages(browser, live_server, tmp_path):
    """Not a check: fills a store with cases in several states and photographs the main pages."""
    import datetime as dt

    # Orders signed for two days ago, so the 7-day windows are open and the countdowns are real.
    signed = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    store, buyer, order = _shop(signed_at=signed)
    lead = make_staff(store, "supervisor", username="lead-wang")
    agent = make_staff(store, "agent", username="agent-li")
    shop_side = actor_for_user(lead, store)
    logistics_services.create_warehouse(actor=actor_for_user(make_staff(store, "admin"), store), code="main",
                                        name="华东仓", contact_name="王师傅", phone="021-55550000",
                                        province="上海市", city="上海市", address="浦东新区川沙路 1 号", is_default=True)
    # SLA targets in calendar hours, so the countdowns in the pictures do not depend on the day they are taken.
    SlaPolicy.objects.create(store=store, name="标准", first_response_minutes=8 * 60, resolution_minutes=72 * 60,
                             business_time=False)
    cases = []
    for index in range(8):
        other = make_order(store, make_buyer(store), signed_at=signed)
        line = other.lines.order_by("line_no")[index % 2]
        cases.append(services.create_case(actor=buyer_of(other.buyer), kind=("return_refund", "exchange",
                     "refund_only", "repair")[index % 4], order_id=other.pk, lines=[LineRequest(line.pk, 1)],
                     reason_code=("quality", "no_reason", "size", "not_as_described")[index % 4],
                     description="收到时外壳有裂纹" if index % 2 else "尺码偏小"))
    services.assign_case(actor=shop_side, case_id=cases[0].pk, assignee_id=agent.pk)
    services.assign_case(actor=shop_side, case_id=cases[1].pk, assignee_id=lead.pk)
    services.transition_case(actor=shop_side, case_id=cases[2].pk, action="approve")
    services.transition_case(actor=shop_side, case_id=cases[4].pk, action="counter_offer", payload={"amount": "50.00"})
    Case.objects.filter(pk__in=[cases[5].pk, cases[7].pk]).update(deadline_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    Case.objects.filter(pk=cases[6].pk).update(deadline_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    services.post_message(actor=buyer_of(cases[0].buyer), case_id=cases[0].pk, body="请尽快处理，谢谢")
    services.post_message(actor=shop_side, case_id=cases[0].pk, body="已联系仓库核实库存", visibility="internal")
    # Some clocks met, two breached (one while an agent owned the case), one in its warning share.
    services.post_message(actor=actor_for_user(agent, store), case_id=cases[0].pk, body="您好，正在为您核实")
    services.post_message(actor=shop_side, case_id=cases[3].pk, body="您好，已收到照片")
    services.assign_case(actor=shop_side, case_id=cases[5].pk, assignee_id=agent.pk)
    now = dt.datetime.now(dt.UTC)
    SlaClock.objects.filter(case_id__in=[cases[5].pk, cases[7].pk], target="first_response").update(
        started_at=now - dt.timedelta(hours=10), running_since=now - dt.timedelta(hours=10),
        due_at=now - dt.timedelta(hours=2), warn_at=now - dt.timedelta(hours=3, minutes=36))
    SlaClock.objects.filter(case_id=cases[6].pk, target="first_response").update(
        started_at=now - dt.timedelta(hours=7), running_since=now - dt.timedelta(hours=7),
        due_at=now + dt.timedelta(hours=1), warn_at=now - dt.timedelta(minutes=36))
    sla_services.sweep_clocks()

    page = _page(browser, locale="zh-CN")
    sign_in(page, live_server.url, lead.username)
    page.wait_for_selector("tr[data-href]")
    page.keyboard.press("j")
    shot(page, "console-queue")
    page.goto(f"{live_server.url}/console/cases/{cases[0].pk}/")
    shot(page, "console-case")
    page.goto(f"{live_server.url}/console/supervisor/")
    shot(page, "console-supervisor")
    page.goto(f"{live_server.url}/console/sla/")
    shot(page, "console-sla-report")
    # The case page as it updates itself: the buyer writes while the agent has the page open.
    page.goto(f"{live_server.url}/console/cases/{cases[5].pk}/")
    services.post_message(actor=buyer_of(cases[5].buyer), case_id=cases[5].pk, body="请问什么时候能处理？")
    page.wait_for_selector("#conversation-list .live-new")
    shot(page, "console-case-live")
    admin = make_staff(store, "admin", username="admin-zhao")
    _delivery_log(store, admin)
    desk = _page(browser, locale="zh-CN")
    sign_in(desk, live_server.url, admin.username)
    desk.goto(f"{live_server.url}/console/webhooks/")
    shot(desk, "console-webhooks")
    Case.objects.filter(pk=cases[2].pk).update(status="return_in_transit", return_carrier="SF",
                                               return_tracking_number="SF1029384756")
    page.goto(f"{live_server.url}/console/warehouse/?q=SF1029384756")
    shot(page, "console-warehouse")

    mobile = _page(browser, locale="zh-CN", mobile=True)
    sign_in(mobile, live_server.url, buyer.user.username)
    mobile.goto(f"{live_server.url}/portal/orders/{order.pk}/")
    shot(mobile, "portal-order")
    mobile.goto(f"{live_server.url}/portal/orders/{order.pk}/request/")
    line = order.lines.order_by("line_no")[0]
    mobile.fill(f"#qty_{line.pk}", "1")
    mobile.select_option("#reason", "quality")
    mobile.set_input_files("#photos", str(_png(tmp_path)))
    mobile.wait_for_selector("#preview strong")
    shot(mobile, "portal-request")
    mobile.click("button.primary[type=submit]:not(.link)")
    mobile.wait_for_selector("#case-status")
    mine = Case.objects.get(order=order)
    services.transition_case(actor=shop_side, case_id=mine.pk, action="approve")
    mobile.reload()
    shot(mobile, "portal-progress")

    guest = _page(browser, locale="zh-CN", mobile=True)
    settings_override = {"AFTERSALES_SHOW_GUEST_CODES": True}
    from django.test import override_settings

    with override_settings(**settings_override):
        guest.goto(f"{live_server.url}/portal/guest/")
        guest.fill("#order_number", order.external_id)
        guest.fill("#contact", buyer.email)
        guest.click("button.primary")
        guest.wait_for_selector("#demo-code")
        shot(guest, "portal-guest-code")
