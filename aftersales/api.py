"""The JSON API: /api/v1/..., OpenAPI at /api/openapi.json, interactive docs at /api/docs.

Authentication is a store API token (`Authorization: Bearer as_...`) for other systems, or the
browser session for our own pages (then CSRF is checked on writes). Every error has one shape:
`{"code", "message", "details"}`.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security.base import AuthBase
from ninja.utils import check_csrf

from aftersales.cases.api import router as cases_router
from aftersales.core.errors import DomainError
from aftersales.core.renderers import ApiRenderer
from aftersales.logistics.api import router as logistics_router
from aftersales.notifications.api import router as notifications_router
from aftersales.orders.api import router as orders_router
from aftersales.policies.api import router as policies_router
from aftersales.refunds.api import router as refunds_router
from aftersales.repairs.api import router as repairs_router
from aftersales.sla.api import router as sla_router
from aftersales.stores.auth import actor_for_token, actor_from_session, bearer_token, has_bearer
from aftersales.stores.permissions import Actor
from aftersales.warehouse.api import router as warehouse_router


class ActorAuth(AuthBase):
    """Resolves the caller to an Actor, or None (Ninja then answers 401). The OpenAPI document shows the
    bearer token; the session is for our own pages."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> Actor | None:
        if has_bearer(request):
            # A token that does not authenticate is a 401, never a fall-back to the session.
            token = bearer_token(request)
            return actor_for_token(token) if token is not None else None
        actor = actor_from_session(request)
        # The browser sends the session cookie with any site's form post; only our pages know the token.
        if actor is not None and request.method not in ("GET", "HEAD", "OPTIONS") and check_csrf(request) is not None:
            raise DomainError("csrf_failed", "CSRF check failed: send the csrftoken cookie's value "
                              "in the X-CSRFToken header", status=403)
        return actor


api = NinjaAPI(
    title="aftersales API",
    version="1",
    description="After-sales cases, orders and policy decisions for e-commerce stores.",
    auth=ActorAuth(),
    renderer=ApiRenderer(),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def _error(request: HttpRequest, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> HttpResponse:
    return api.create_response(request, {"code": code, "message": message, "details": details or {}}, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.message, exc.details)


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        {"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors
    ]
    return _error(request, 422, "validation_error", "the request is not valid", {"errors": errors})


def _field_name(loc: tuple[Any, ...]) -> str:
    # Ninja's locations start with the source ("body", "query", "path", "file") and, for a body, the
    # handler's parameter name; the client only knows the field, so both are left out.
    path = loc[2:] if loc[:1] == ("body",) and len(loc) > 2 else loc[1:]
    return ".".join(str(p) for p in path) or (str(loc[0]) if loc else "body")


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "not_authenticated", "sign in or send an API token")


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "not found")


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja raises these itself, chiefly a body that is not JSON at all.
    code = "malformed_request" if exc.status_code == 400 else "http_error"
    return _error(request, exc.status_code, code, str(exc))


api.add_router("/v1", cases_router)
api.add_router("/v1", orders_router)
api.add_router("/v1/policy", policies_router)
api.add_router("/v1", sla_router)
api.add_router("/v1", logistics_router)
api.add_router("/v1", warehouse_router)
api.add_router("/v1", repairs_router)
api.add_router("/v1", notifications_router)
api.add_router("/v1", refunds_router)


def unknown_api_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any /api/ path no route answers: the API's own error shape, not Django's HTML page."""
    return JsonResponse({"code": "not_found", "message": "no such API endpoint", "details": {"path": request.path}},
                        status=404)
