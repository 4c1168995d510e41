"""The web entry point: a call to the API with a token skips the middleware only a browser needs.

Sessions, CSRF, the signed-in user, messages and static files serve our pages. A system calling
`/api/` with `Authorization: Bearer ...` uses none of them: the API's auth never falls back from a
token to the session (`aftersales.api.ActorAuth`), and no API view reads `request.user` or the
session. Those calls go through `token_api_middleware()`, which keeps every middleware that shapes
the answer (security headers, language, Content-Length, frame options, idempotency), in the same
order, with Django's LocaleMiddleware in the form `ApiLocaleMiddleware` below. Every other request
takes the whole of `settings.MIDDLEWARE`, unchanged. On opening a case the five middlewares skipped
were 6 % of the instructions of the request in-process.

The test client routes the same way (`aftersales.tests.token_caller`), so every API test with a
token goes through the short chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import translation
from django.utils.cache import patch_vary_headers

# Only for browsers: static files, sessions, CSRF (cookie-authenticated calls only), request.user, messages.
BROWSER_ONLY = frozenset({
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
})


DJANGO_LOCALE = "django.middleware.locale.LocaleMiddleware"


def token_api_middleware() -> list[str]:
    return [f"{__name__}.ApiLocaleMiddleware" if path == DJANGO_LOCALE else path
            for path in settings.MIDDLEWARE if path not in BROWSER_ONLY]


class ApiLocaleMiddleware:
    """What Django's LocaleMiddleware does for a URL without a language prefix, which every URL here is
    (no `i18n_patterns`; a test holds that): the language the caller asks for (cookie, then
    Accept-Language, then the default) is active while the request runs, and the answer says which one
    it got (Content-Language) and that it depends on Accept-Language (Vary).

    Django's own middleware also looks for a language prefix in the path, twice, and whether the URLs use
    such prefixes, twice, through the generic process_request/process_response wrapper: on opening a
    case it took about 4 % of the request's CPU (benchmarks/case_create_stages.py); without those, the
    whole request runs 1.7 % fewer instructions."""

    def __init__(self, get_response: Any):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        translation.activate(translation.get_language_from_request(request))
        request.LANGUAGE_CODE = translation.get_language()
        response: HttpResponse = self.get_response(request)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


def is_bearer(authorization: str) -> bool:
    """Whether an Authorization header's value carries a bearer token (the scheme is case-insensitive)."""
    return authorization[:7].lower() == "bearer "


def is_token_api_call(environ: Mapping[str, Any]) -> bool:
    return (str(environ.get("PATH_INFO", "")).startswith("/api/")
            and is_bearer(str(environ.get("HTTP_AUTHORIZATION", ""))))


@contextmanager
def middleware_list(paths: list[str]) -> Iterator[None]:
    """Django builds a handler's chain from settings.MIDDLEWARE: this lets it build one from `paths`,
    with its own logic, while a handler starts (before it serves anything)."""
    full = settings.MIDDLEWARE
    settings.MIDDLEWARE = paths
    try:
        yield
    finally:
        settings.MIDDLEWARE = full


class TokenApiChain(BaseHandler):
    """Mixed into a handler (the WSGI one here, the test client's in the tests): its chain is the token API's."""

    def load_middleware(self, is_async: bool = False) -> None:
        with middleware_list(token_api_middleware()):
            super().load_middleware(is_async)


class TokenApiWSGIHandler(TokenApiChain, WSGIHandler):
    pass


class AftersalesWSGIHandler(WSGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.token_api = TokenApiWSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> HttpResponseBase:
        if is_token_api_call(environ):
            return self.token_api(environ, start_response)
        return super().__call__(environ, start_response)
