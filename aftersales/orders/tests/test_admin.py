import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_():
    user = get_user_model().objects.create_superuser(username="root", password="pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client


def test_the_order_admin_finds_an_order_by_buyer_and_shows_its_lines(admin_client_):
    store = f.make_store()
    order = f.make_order(store)

    found = admin_client_.get(f"/admin/orders/order/?q={order.buyer.external_id}&store__id__exact={store.pk}")
    page = admin_client_.get(f"/admin/orders/order/{order.pk}/change/")

    assert found.status_code == 200
    assert found.context["cl"].result_count == 1
    assert page.status_code == 200
    assert b"TSHIRT-M" in page.content and b"PHONE-1" in page.content


def test_the_product_admin_lists_products(admin_client_):
    from aftersales.catalog.models import Product
    store = f.make_store()
    Product.objects.create(store=store, sku="SKU-9", name="杯子", price="9.90", category="home")

    response = admin_client_.get("/admin/catalog/product/?q=SKU-9")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
