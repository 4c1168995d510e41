import hashlib

import pytest
from django.contrib.auth import get_user_model

from aftersales.cases import services
from aftersales.cases.models import Case
from aftersales.stores.models import ApiToken
from aftersales.stores.services import authenticate_token, create_api_token
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    user = get_user_model().objects.create_superuser(username="operator", password="pw-for-tests-only", email="")
    client.force_login(user)
    return client


def test_a_token_made_in_the_admin_is_shown_once_and_only_its_hash_is_stored(operator_client):
    store = f.make_store()

    response = operator_client.post("/admin/stores/apitoken/add/",
                                    {"store": store.pk, "name": "ERP", "scopes": ["orders:write", "cases:read"]},
                                    follow=True)

    token = ApiToken.objects.get()
    shown = [m.message for m in response.context["messages"]]
    raw = next(word for message in shown for word in message.split() if word.startswith("as_"))
    assert (token.store_id, token.name, token.scopes) == (store.pk, "ERP", ["orders:write", "cases:read"])
    assert token.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert authenticate_token(raw) == token
    assert raw not in operator_client.get(f"/admin/stores/apitoken/{token.pk}/change/").content.decode()


def test_revoking_in_the_admin_stops_the_token(operator_client):
    store = f.make_store()
    token, raw = create_api_token(store=store, name="ERP", scopes=["orders:read"])

    operator_client.post("/admin/stores/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})

    assert authenticate_token(raw) is None


def test_the_case_admin_shows_a_case_and_its_timeline_but_does_not_save_changes(operator_client):
    store = f.make_store()
    order = f.make_order(store)
    line = order.lines.order_by("line_no")[0]
    case = services.create_case(actor=f.staff(store), kind="return_refund", order_id=order.pk, reason_code="quality",
                                lines=[services.LineRequest(order_line_id=line.pk, quantity=1)])

    page = operator_client.get(f"/admin/cases/case/{case.pk}/change/")
    refused = operator_client.post(f"/admin/cases/case/{case.pk}/change/", {"status": "refunded"})

    assert page.status_code == 200
    assert case.number in page.content.decode() and "pending_review" in page.content.decode()
    assert refused.status_code == 403
    assert Case.objects.get(pk=case.pk).status == "pending_review"


def test_the_case_list_filters_by_kind_status_and_store(operator_client):
    store = f.make_store()
    buyer = f.make_buyer(store)
    services.create_case(actor=f.staff(store), kind="inquiry", buyer_id=buyer.pk, subject="发票怎么开")

    response = operator_client.get(f"/admin/cases/case/?kind__exact=inquiry&status__exact=open&store__id__exact={store.pk}")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
