"""The demo marketplace is built once for the module, inside a transaction rolled back at the end."""

import datetime as dt

import pytest
from django.contrib.auth import authenticate
from django.db import transaction
from django.test import override_settings
from django.utils import translation

from aftersales.cases.models import Case, TimelineEntry
from aftersales.catalog.models import Product
from aftersales.console.templatetags.aftersales_ui import ACTION_LABELS
from aftersales.demo import builder
from aftersales.demo.paths import all_kind_states
from aftersales.orders.models import Order, Shipment
from aftersales.stores.models import ArbiterMembership, Membership, Role, Store
from aftersales.stores.services import authenticate_token

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    # A fast hasher: the demo makes a dozen logins, and the real one is slow on purpose.
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with override_settings(DATA_DIR=data_dir, PASSWORD_HASHERS=fast), django_db_blocker.unblock(), \
            transaction.atomic():
        started = dt.datetime.now(dt.UTC)
        result = builder.load_demo_data()
        yield result, started
        transaction.set_rollback(True)


def test_cases_rest_in_every_state_of_every_kind(demo):
    pairs = set(Case.objects.values_list("kind", "status"))

    assert pairs == all_kind_states()


def test_every_state_of_the_tables_is_covered_by_the_expected_pairs():
    # all_kind_states is derived from the tables; this pins it to a few pairs a reader can check by eye.
    expected = all_kind_states()
    for pair in [("return_refund", "submitted"), ("return_refund", "in_arbitration"), ("exchange", "reshipped"),
                 ("repair", "quote_pending"), ("refund_only", "refunded"), ("complaint", "waiting_on_customer"),
                 ("inquiry", "closed")]:
        assert pair in expected


def test_two_stores_of_one_marketplace_in_china(demo):
    stores = list(Store.objects.order_by("slug").values_list("slug", "platform_mode", "timezone", "currency",
                                                             "marketplace__slug"))

    assert stores == [
        ("demo-apparel", "taobao", "Asia/Shanghai", "CNY", "demo-mall"),
        ("demo-electronics", "jd", "Asia/Shanghai", "CNY", "demo-mall"),
    ]


def test_each_store_has_staff_in_every_role_and_the_marketplace_an_arbiter(demo):
    for store in Store.objects.all():
        roles = sorted(Membership.objects.filter(store=store).values_list("role", flat=True))
        assert roles == sorted(Role.values)
    assert list(ArbiterMembership.objects.values_list("user__username", "marketplace__slug")) == [
        ("mall-arbiter", "demo-mall")]


def test_orders_are_at_least_two_hundred_signed_for_within_the_last_thirty_days(demo):
    _, started = demo
    signed = list(Shipment.objects.values_list("signed_at", flat=True))

    assert Order.objects.count() == 2 * builder.ORDERS_PER_STORE >= 200
    assert len(signed) == Order.objects.count()
    assert all(started - dt.timedelta(days=30) <= at <= started for at in signed)


def test_products_span_the_categories_the_policy_treats_differently(demo):
    categories = set(Product.objects.values_list("category", flat=True))
    flags = Product.objects.filter(customised=True).count(), Product.objects.filter(perishable=True).count()

    assert {"apparel", "electronics", "fresh_food", "cosmetics", "books", "periodicals", "customised"} <= categories
    assert flags == (2, 2)


def test_the_printed_logins_are_the_ones_that_sign_in(demo):
    result, _ = demo
    saved = builder.saved_logins()

    people = [login for login in saved if login.role != builder.API_TOKEN]
    tokens = [login for login in saved if login.role == builder.API_TOKEN]
    assert saved == result.logins
    assert {login.role for login in people} == {*Role.values, "buyer", "arbiter", "operator"}
    assert all(authenticate(username=x.username, password=x.password) is not None for x in people)
    token_stores = {x.store: authenticate_token(x.password) for x in tokens}
    assert {named: token.store.slug if token else None for named, token in token_stores.items()} == {
        "demo-apparel": "demo-apparel", "demo-electronics": "demo-electronics"}


def test_running_it_again_changes_nothing(demo):
    result, _ = demo

    again = builder.load_demo_data()

    assert again.created is False
    assert again.counts == result.counts == builder.counts()
    assert again.logins == result.logins


def test_every_timeline_event_the_demo_writes_has_a_label_in_both_languages(demo):
    # The console and the buyer's page name each entry from one table; an event missing from it shows
    # its raw code to the reader.
    events = set(TimelineEntry.objects.values_list("event", flat=True).distinct())
    assert sorted(events - set(ACTION_LABELS)) == []
    with translation.override("zh-hans"):
        untranslated = sorted(key for key in ACTION_LABELS if ACTION_LABELS.get(key) == dict.get(ACTION_LABELS, key))
    assert untranslated == []
