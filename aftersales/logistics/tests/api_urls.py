"""Until the logistics, warehouse and repairs routers are mounted in aftersales/api.py, the tests reach
them through this URLconf: a second API with the same authentication and error handlers, placed in
front of the real one, so /api/v1/cases/... still answers from the real API."""

from __future__ import annotations

from django.urls import path
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from aftersales import api as main
from aftersales import urls as main_urls
from aftersales.core.errors import DomainError
from aftersales.logistics.api import router as logistics_router
from aftersales.repairs.api import router as repairs_router
from aftersales.warehouse.api import router as warehouse_router

ROUTERS = (logistics_router, warehouse_router, repairs_router)


def mounted_in_main_api() -> bool:
    return any(mounted is router for _, mounted in main.api._routers for router in ROUTERS)


test_api = NinjaAPI(title="aftersales test mount", auth=main.ActorAuth(), urls_namespace="aftersales-issue6-tests",
                    docs_url=None)
test_api.add_exception_handler(DomainError, main.on_domain_error)  # type: ignore[arg-type]
test_api.add_exception_handler(NinjaValidationError, main.on_validation_error)  # type: ignore[arg-type]
test_api.add_exception_handler(AuthenticationError, main.on_auth_error)  # type: ignore[arg-type]
test_api.add_exception_handler(HttpError, main.on_http_error)  # type: ignore[arg-type]
for router in ROUTERS:
    test_api.add_router("/v1", router, url_name_prefix="issue6")

urlpatterns = [path("api/", test_api.urls), *main_urls.urlpatterns]
