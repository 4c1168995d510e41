"""Idempotency-Key for POSTs to the API: the same key with the same request gets the same answer, once.

The key is claimed first: its record is inserted at the start of the one transaction that also holds
the request's effects, and filled in with the answer at the end. A concurrent duplicate's insert waits
on the unique index until the first commits, then fails and replays the stored answer, so the work is
never done twice (if the first rolled back, the duplicate's insert goes through and it does the work).
Only 2xx answers are kept: a refused request wrote nothing, so a corrected retry may reuse its key.

The caller is resolved before the record is consulted (a token must authenticate, not merely look like
one), so nobody can read another caller's stored answer by guessing a key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from aftersales.stores.auth import bearer_token, has_bearer, requested_store_slug

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200


def _principal(request: HttpRequest) -> str | None:
    if has_bearer(request):
        token = bearer_token(request)
        return f"token:{token.pk}" if token is not None else None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        # The store is part of who is asking: a person working in two stores keeps two sets of keys.
        return f"user:{user.pk}:{requested_store_slug(request) or ''}"
    return None


def _fingerprint(request: HttpRequest) -> str:
    """What the request asks for, independent of how it happened to be encoded on the wire."""
    parts: list[Any] = [request.get_full_path()]
    if request.content_type == "multipart/form-data":
        # The boundary is random on every send, so the raw body of a faithful retry differs.
        parts.append(sorted((name, request.POST.getlist(name)) for name in request.POST))
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                digest = hashlib.sha256()
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
                parts.append([name, upload.name, digest.hexdigest()])
    else:
        try:
            parts.append(json.loads(request.body) if request.body else None)
        except ValueError:
            parts.append(request.body.hex())
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "details": {"header": HEADER}}, status=status)


def _answer_for(record: IdempotencyRecord, fingerprint: str) -> HttpResponse:
    if record.request_hash != fingerprint:
        return _error("idempotency_key_reused", f"this {HEADER} was used with a different request", 422)
    response = HttpResponse(record.response_body, status=record.status_code, content_type="application/json")
    response[REPLAYED_HEADER] = "true"
    return response


class _NotStored(Exception):
    def __init__(self, response: HttpResponse):
        self.response = response


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not key or len(key) > MAX_KEY_LENGTH:
            return _error("invalid_idempotency_key", f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters", 400)
        principal = _principal(request)
        if principal is None:
            return self.get_response(request)  # not signed in: the API answers 401 itself
        fingerprint = _fingerprint(request)

        existing = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
        if existing is not None:
            return _answer_for(existing, fingerprint)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    principal=principal, key=key, request_hash=fingerprint, status_code=0, response_body=""
                )
                response = self.get_response(request)
                if not 200 <= response.status_code < 300:
                    raise _NotStored(response)
                record.status_code = response.status_code
                record.response_body = response.content.decode()
                record.save(update_fields=["status_code", "response_body"])
                return response
        except _NotStored as not_stored:
            return not_stored.response
        except IntegrityError:
            # Another request with this key committed first, while this one waited on the insert.
            winner = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
            if winner is None:
                raise
            return _answer_for(winner, fingerprint)
