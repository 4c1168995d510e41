# Through call_command, not aftersales.cli.main: a command run from argv closes the database connections
# when it ends, which would close the test's own transaction on PostgreSQL. test_cli covers the mapping.
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from aftersales.stores.models import Membership
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db


def test_createstaff_creates_a_login_with_a_membership_in_the_role():
    store = f.make_store(slug="shop-a")

    call_command("createstaff", store="shop-a", username="lin", role="warehouse", password="a-long-enough-password")

    user = get_user_model().objects.get(username="lin")
    assert list(Membership.objects.filter(user=user).values_list("store_id", "role")) == [(store.pk, "warehouse")]
    assert user.check_password("a-long-enough-password")


def test_createstaff_adds_an_existing_user_to_another_store_without_touching_the_password():
    f.make_store(slug="shop-a")
    f.make_store(slug="shop-b")
    call_command("createstaff", store="shop-a", username="lin", role="agent", password="a-long-enough-password")

    call_command("createstaff", store="shop-b", username="lin", role="supervisor")

    user = get_user_model().objects.get(username="lin")
    assert sorted(Membership.objects.filter(user=user).values_list("store__slug", "role")) == [
        ("shop-a", "agent"), ("shop-b", "supervisor")]
    assert user.check_password("a-long-enough-password")


def test_createstaff_refuses_an_unknown_store_and_creates_nobody():
    with pytest.raises(CommandError, match=r"^no store with the slug 'nowhere'$"):
        call_command("createstaff", store="nowhere", username="lin", role="agent", password="a-long-enough-password")

    assert not get_user_model().objects.filter(username="lin").exists()


def test_createstaff_refuses_a_short_password():
    f.make_store(slug="shop-a")

    with pytest.raises(CommandError, match="too short"):
        call_command("createstaff", store="shop-a", username="lin", role="agent", password="abc")

    assert not get_user_model().objects.filter(username="lin").exists()
