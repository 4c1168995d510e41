"""Who may do what. Roles and token scopes both resolve to the same set of permission names, and the
services check those names, so a view that forgets a check still cannot let a write through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aftersales.core.errors import PermissionDenied

from .models import Role

# Permission names, grouped by what they guard.
CASE_READ = "case.read"
CASE_CREATE = "case.create"
CASE_REPLY = "case.reply"  # public message to the buyer
CASE_NOTE = "case.note"  # internal note, never shown to the buyer
CASE_DECIDE = "case.decide"  # approve, reject, counter-offer, resolve
CASE_ASSIGN = "case.assign"
CASE_WAREHOUSE = "case.warehouse"  # receive and inspect returned goods
CASE_REFUND = "case.refund"
CASE_RESHIP = "case.reship"
CASE_REPAIR = "case.repair"
CASE_CLOSE = "case.close"
CASE_REOPEN = "case.reopen"
CASE_ARBITRATE = "case.arbitrate"
CASE_BUYER = "case.buyer"  # the buyer's own moves: accept an offer, ship the return, escalate
CASE_SYSTEM = "case.system"  # timeouts and other moves only the system makes
ORDER_READ = "order.read"
ORDER_WRITE = "order.write"
STORE_ADMIN = "store.admin"
POLICY_EVALUATE = "policy.evaluate"

_AGENT = {
    CASE_READ, CASE_CREATE, CASE_REPLY, CASE_NOTE, CASE_DECIDE, CASE_ASSIGN, CASE_RESHIP, CASE_REPAIR,
    CASE_CLOSE, CASE_REFUND, ORDER_READ, POLICY_EVALUATE,
}
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.AGENT: frozenset(_AGENT),
    Role.SUPERVISOR: frozenset(_AGENT | {CASE_WAREHOUSE, CASE_REOPEN}),
    Role.ADMIN: frozenset(_AGENT | {CASE_WAREHOUSE, CASE_REOPEN, ORDER_WRITE, STORE_ADMIN}),
    Role.WAREHOUSE: frozenset({CASE_READ, CASE_NOTE, CASE_WAREHOUSE, CASE_RESHIP, CASE_REPAIR, ORDER_READ}),
    Role.FINANCE: frozenset({CASE_READ, CASE_NOTE, CASE_REFUND, ORDER_READ}),
}
BUYER_PERMISSIONS = frozenset({CASE_READ, CASE_CREATE, CASE_REPLY, CASE_BUYER, ORDER_READ, POLICY_EVALUATE})
ARBITER_PERMISSIONS = frozenset({CASE_READ, CASE_REPLY, CASE_NOTE, CASE_ARBITRATE, ORDER_READ})

TOKEN_SCOPES: dict[str, frozenset[str]] = {
    "orders:read": frozenset({ORDER_READ}),
    "orders:write": frozenset({ORDER_READ, ORDER_WRITE}),
    "cases:read": frozenset({CASE_READ}),
    "cases:write": frozenset(
        {CASE_READ, CASE_CREATE, CASE_REPLY, CASE_NOTE, CASE_DECIDE, CASE_ASSIGN, CASE_WAREHOUSE, CASE_RESHIP,
         CASE_REPAIR, CASE_CLOSE, CASE_REOPEN, CASE_BUYER}
    ),
    "refunds:write": frozenset({CASE_READ, CASE_REFUND}),
    "policy:evaluate": frozenset({POLICY_EVALUATE}),
}
ALL_PERMISSIONS = frozenset().union(*ROLE_PERMISSIONS.values(), BUYER_PERMISSIONS, ARBITER_PERMISSIONS, {CASE_SYSTEM})

ActorKind = Literal["staff", "buyer", "token", "system", "arbiter"]


@dataclass(frozen=True)
class Actor:
    """Whoever is acting, already resolved to one store and a set of permissions."""

    kind: ActorKind
    store_id: int
    permissions: frozenset[str]
    label: str
    user_id: int | None = None
    buyer_id: int | None = None
    token_id: int | None = None
    role: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise PermissionDenied(f"{self.label} may not do this", details={"permission": permission})

    @property
    def is_buyer(self) -> bool:
        return self.kind == "buyer"


def system_actor(store_id: int, reason: str = "system") -> Actor:
    return Actor(kind="system", store_id=store_id, permissions=ALL_PERMISSIONS, label=reason)


def staff_actor(*, store_id: int, user_id: int, role: str, label: str) -> Actor:
    return Actor(kind="staff", store_id=store_id, permissions=ROLE_PERMISSIONS[role], label=label, user_id=user_id, role=role)


def buyer_actor(*, store_id: int, buyer_id: int, label: str, user_id: int | None = None) -> Actor:
    return Actor(kind="buyer", store_id=store_id, permissions=BUYER_PERMISSIONS, label=label, buyer_id=buyer_id, user_id=user_id)


def token_actor(*, store_id: int, token_id: int, scopes: list[str], label: str) -> Actor:
    permissions: frozenset[str] = frozenset().union(*(TOKEN_SCOPES.get(scope, frozenset()) for scope in scopes))
    return Actor(kind="token", store_id=store_id, permissions=permissions, label=label, token_id=token_id)


def arbiter_actor(*, store_id: int, user_id: int, label: str) -> Actor:
    return Actor(kind="arbiter", store_id=store_id, permissions=ARBITER_PERMISSIONS, label=label, user_id=user_id)
