"""Writes for stores, people and tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from aftersales.core import clock
from aftersales.core.errors import ValidationFailed

from .models import ApiToken, Buyer, Membership, Role, Store
from .permissions import STORE_ADMIN, TOKEN_SCOPES, Actor

TOKEN_PREFIX = "as"


def create_store(*, name: str, slug: str, **attributes: object) -> Store:
    from aftersales.cases.services import install_default_reason_codes

    with transaction.atomic():
        store = Store.objects.create(name=name, slug=slug, **attributes)
        install_default_reason_codes(store=store)
    return store


def add_member(*, store: Store, user: Any, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationFailed(f"unknown role {role!r}", field="role")
    membership, _ = Membership.objects.update_or_create(user=user, store=store, defaults={"role": role})
    return membership


def create_staff_user(*, store: Store, username: str, password: str, role: str, email: str = "") -> AbstractBaseUser:
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(username=username, password=password, email=email)
        add_member(store=store, user=user, role=role)
    return user


def _hash_secret(raw: str) -> str:
    # The secret is 32 random bytes, so a plain SHA-256 is enough; a slow hash would only slow every request.
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_token(*, store: Store, name: str, scopes: list[str], actor: Actor | None = None) -> tuple[ApiToken, str]:
    """Returns the token and its plaintext, which is shown once and never stored."""
    if actor is not None:
        actor.require(STORE_ADMIN)
    unknown = sorted(set(scopes) - set(TOKEN_SCOPES))
    if unknown:
        raise ValidationFailed("unknown token scopes", field="scopes", details={"unknown": unknown})
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secret}"
    token = ApiToken.objects.create(store=store, name=name, prefix=prefix, secret_hash=_hash_secret(raw), scopes=scopes)
    return token, raw


# A token this process has just verified is believed for a few seconds without asking the database
# again: a system calling the API a thousand times a second would otherwise spend a round trip of every
# call on it. The price is that a token revoked elsewhere keeps working here for at most this long; the
# process that revokes it forgets it at once.
VERIFIED_TOKEN_SECONDS = 5.0
_MAX_VERIFIED = 10_000
_verified: dict[str, tuple[float, ApiToken]] = {}  # SHA-256 of the whole token -> (believed until, token)


def authenticate_token(raw: str) -> ApiToken | None:
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    digest = _hash_secret(raw)
    now = time.monotonic()
    known = _verified.get(digest)
    if known is not None and known[0] > now:
        return known[1]
    token = ApiToken.objects.select_related("store").filter(prefix=parts[1], revoked_at__isnull=True).first()
    if token is None or not hmac.compare_digest(token.secret_hash, digest):
        _verified.pop(digest, None)
        return None
    if len(_verified) >= _MAX_VERIFIED:
        _verified.clear()
    _verified[digest] = (now + VERIFIED_TOKEN_SECONDS, token)
    return token


def revoke_api_token(*, token: ApiToken, actor: Actor) -> None:
    actor.require(STORE_ADMIN)
    token.revoked_at = clock.now()
    token.save(update_fields=["revoked_at"])
    for digest, (_, known) in list(_verified.items()):
        if known.pk == token.pk:
            _verified.pop(digest, None)


def upsert_buyer(*, store: Store, external_id: str, name: str = "", email: str = "", phone: str = "") -> Buyer:
    buyer, created = Buyer.objects.get_or_create(
        store=store, external_id=external_id, defaults={"name": name, "email": email, "phone": phone}
    )
    if not created and (name, email, phone) != (buyer.name, buyer.email, buyer.phone) and any((name, email, phone)):
        buyer.name, buyer.email, buyer.phone = name or buyer.name, email or buyer.email, phone or buyer.phone
        buyer.save(update_fields=["name", "email", "phone"])
    return buyer
