"""Tests that cross apps (isolation over every route, the OpenAPI document), and the HTTP helpers the
API tests of every app share: a caller speaking JSON to /api/v1 with a token or a browser session."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from django.test.client import ClientHandler

from aftersales.core.handlers import TokenApiChain, is_token_api_call
from aftersales.stores.models import Store
from aftersales.stores.services import create_api_token

FULL_SCOPES = ["cases:write", "refunds:write", "orders:read"]


class ApiCaller:
    """One caller of the API. Every call states the status it expects, so a test fails at the step
    that went wrong, with the error body in the message."""

    def __init__(self, client: Client, **headers: str):
        self.client = client
        self.headers = headers

    def request(self, method: str, path: str, body: Any = None, *, expect: int | None = None,
                headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        url = path if path.startswith("/api/") else f"/api/v1{path}"
        all_headers = {**self.headers, **(headers or {})}
        if method == "GET":
            response = self.client.get(url, body, headers=all_headers, **kwargs)
        elif "data" in kwargs:  # multipart
            response = self.client.post(url, headers=all_headers, **kwargs)
        else:
            response = self.client.generic(method, url, data=_json(body), content_type="application/json",
                                           headers=all_headers, **kwargs)
        if expect is not None:
            assert response.status_code == expect, (method, url, response.status_code, response.content[:2000])
        return response

    def get(self, path: str, params: dict[str, Any] | None = None, *, expect: int | None = 200, **kw: Any) -> Any:
        response = self.request("GET", path, params or {}, expect=expect, **kw)
        return response.json()

    def post(self, path: str, body: Any = None, *, expect: int | None = 200, key: str | None = None,
             headers: dict[str, str] | None = None, **kw: Any) -> Any:
        headers = {**(headers or {}), **({"Idempotency-Key": key} if key else {})}
        response = self.request("POST", path, body if body is not None else {}, expect=expect, headers=headers, **kw)
        return response.json()

    def act(self, case_id: int, action: str, *, expect: int = 200, **body: Any) -> Any:
        return self.post(f"/cases/{case_id}/actions/{action}", body, expect=expect)

    def timeline(self, case_id: int) -> list[tuple[str, str, str]]:
        return [(e["event"], e["from_status"], e["to_status"]) for e in self.get(f"/cases/{case_id}/timeline")]


def _json(body: Any) -> str:
    return json.dumps(body, default=str)


class _TokenApiClientHandler(TokenApiChain, ClientHandler):
    pass


class _RoutingClientHandler(ClientHandler):
    """The test client's handler, routing as the web entry point does (`core.handlers`): a token call to
    the API takes the token API's middleware chain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token_api = _TokenApiClientHandler(*args, **kwargs)

    def __call__(self, environ: dict[str, Any]) -> Any:
        return self.token_api(environ) if is_token_api_call(environ) else super().__call__(environ)


def routing_client() -> Client:
    client = Client()
    client.handler = _RoutingClientHandler(enforce_csrf_checks=False)
    return client


def token_caller(store: Store, scopes: list[str] | None = None) -> ApiCaller:
    _, raw = create_api_token(store=store, name="integration", scopes=scopes or FULL_SCOPES)
    return ApiCaller(routing_client(), Authorization=f"Bearer {raw}")


def session_caller(user: Any, *, store_slug: str | None = None, enforce_csrf: bool = False) -> ApiCaller:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    headers = {"X-Store": store_slug} if store_slug else {}
    return ApiCaller(client, **headers)
