"""A verified API token is believed by its process for a few seconds (stores.services); revoking it
takes effect at once in the revoking process and within that time everywhere else."""

from __future__ import annotations

import pytest

from aftersales.stores import services
from aftersales.stores.models import ApiToken
from aftersales.testing import factories as f
from aftersales.tests import token_caller

pytestmark = pytest.mark.django_db


def _token_of(caller):
    return ApiToken.objects.get(prefix=caller.headers["Authorization"].split("_")[1])


def test_revoking_a_token_refuses_it_at_once():
    store = f.make_store()
    caller = token_caller(store)
    caller.get("/reason-codes", expect=200)
    services.revoke_api_token(token=_token_of(caller), actor=f.staff(store, "admin"))
    assert caller.get("/reason-codes", expect=401)["code"] == "not_authenticated"


def test_a_token_revoked_by_another_process_is_refused_once_the_memory_runs_out(monkeypatch):
    store = f.make_store()
    caller = token_caller(store)
    clock = [1000.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: clock[0])
    caller.get("/reason-codes", expect=200)
    # As another web process would: straight in the database, this process is not told.
    ApiToken.objects.filter(pk=_token_of(caller).pk).update(revoked_at=f.SIGNED_AT)

    clock[0] += services.VERIFIED_TOKEN_SECONDS - 0.5
    caller.get("/reason-codes", expect=200)
    clock[0] += 1.0
    caller.get("/reason-codes", expect=401)


def test_a_wrong_secret_with_a_known_prefix_is_never_believed():
    store = f.make_store()
    caller = token_caller(store)
    caller.get("/reason-codes", expect=200)
    raw = caller.headers["Authorization"][len("Bearer "):]
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    assert services.authenticate_token(forged) is None
    assert services.authenticate_token(raw) is not None
