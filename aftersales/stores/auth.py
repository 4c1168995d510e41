"""Turns a request into an Actor: an API token, or a signed-in staff member, arbiter or buyer.

A person who belongs to several stores names the store with the `X-Store` header (its slug);
with one store it is implied. Anything that cannot be resolved is "not signed in", never a guess.
"""

from __future__ import annotations

from django.http import HttpRequest

from aftersales.core import clock
from aftersales.core.errors import DomainError
from aftersales.core.handlers import is_bearer

from .models import ApiToken, ArbiterMembership, Buyer, Membership
from .permissions import Actor, arbiter_actor, buyer_actor, staff_actor, token_actor
from .services import authenticate_token

STORE_HEADER = "HTTP_X_STORE"
_TOKEN_CACHE = "_aftersales_bearer_token"


class NotAuthenticated(DomainError):
    status = 401

    def __init__(self, message: str = "sign in or send an API token") -> None:
        super().__init__("not_authenticated", message)


def has_bearer(request: HttpRequest) -> bool:
    return is_bearer(request.headers.get("Authorization", ""))


def bearer_token(request: HttpRequest) -> ApiToken | None:
    """The valid, unrevoked token the request carries, if any. Looked up once per request: the
    idempotency middleware needs the caller before the API resolves it."""
    if not hasattr(request, _TOKEN_CACHE):
        token = authenticate_token(request.headers["Authorization"][7:].strip()) if has_bearer(request) else None
        setattr(request, _TOKEN_CACHE, token)
    cached: ApiToken | None = getattr(request, _TOKEN_CACHE)
    return cached


def requested_store_slug(request: HttpRequest) -> str | None:
    session = getattr(request, "session", None)
    return request.META.get(STORE_HEADER) or (session.get("store_slug") if session is not None else None)


def actor_from_token(raw: str) -> Actor | None:
    token = authenticate_token(raw)
    return actor_for_token(token) if token is not None else None


def actor_for_token(token: ApiToken) -> Actor:
    # Touch last_used_at at most once a minute: a write per request would double the cost of reads.
    now = clock.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        type(token).objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now  # the process may believe this instance for a few seconds more
    return token_actor(store_id=token.store_id, token_id=token.pk, scopes=list(token.scopes), label=f"token:{token.name}")


def actor_from_session(request: HttpRequest) -> Actor | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    wanted = requested_store_slug(request)
    label = user.get_username()

    memberships = Membership.objects.filter(user=user).select_related("store")
    if wanted:
        memberships = memberships.filter(store__slug=wanted)
    chosen = list(memberships[:2])
    if len(chosen) == 1:
        m = chosen[0]
        return staff_actor(store_id=m.store_id, user_id=user.pk, role=m.role, label=label)

    buyers = Buyer.objects.filter(user=user)
    if wanted:
        buyers = buyers.filter(store__slug=wanted)
    buyer_rows = list(buyers[:2])
    if not chosen and len(buyer_rows) == 1:
        b = buyer_rows[0]
        return buyer_actor(store_id=b.store_id, buyer_id=b.pk, user_id=user.pk, label=b.name or label)

    if wanted and not chosen and not buyer_rows:
        arbiter = ArbiterMembership.objects.filter(user=user, marketplace__stores__slug=wanted).values_list(
            "marketplace__stores__id", flat=True
        ).first()
        if arbiter is not None:
            return arbiter_actor(store_id=arbiter, user_id=user.pk, label=label)
    if len(chosen) > 1 or len(buyer_rows) > 1:
        raise DomainError("store_required", "you belong to several stores: name one in the X-Store header")
    return None


def request_actor(request: HttpRequest) -> Actor:
    """Who is calling an API route: what the API's authentication left on the request (a route is only
    reached once it has succeeded, so this is never None there)."""
    return request.auth  # type: ignore[attr-defined]
