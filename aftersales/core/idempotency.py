"""Idempotency-Key for POSTs to the API: the same key with the same body gets the same answer, once.

It wraps the whole request in one transaction with the stored answer, so either both the effect and
the record commit or neither does. A concurrent duplicate blocks on the unique key until the first
commits, fails its insert, rolls its own work back and replays the first answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


def _principal(request: HttpRequest) -> str | None:
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        # The token's public prefix identifies the caller without keeping the secret.
        parts = authorization[7:].strip().split("_", 2)
        return f"token:{parts[1]}" if len(parts) == 3 else None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "details": {"header": HEADER}}, status=status)


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(record.response_body, status=record.status_code, content_type="application/json")
    response["Idempotent-Replayed"] = "true"
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
            return self.get_response(request)  # unauthenticated: the API answers 401 itself
        request_hash = hashlib.sha256(request.path.encode() + b"\0" + request.body).hexdigest()

        existing = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
        if existing is not None:
            return self._answer_for(existing, request_hash)
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if not 200 <= response.status_code < 300:
                    # Failures are not stored (nothing was written), so a corrected retry may reuse the key.
                    raise _NotStored(response)
                IdempotencyRecord.objects.create(
                    principal=principal, key=key, request_hash=request_hash, status_code=response.status_code,
                    response_body=response.content.decode(),
                )
                return response
        except _NotStored as not_stored:
            return not_stored.response
        except IntegrityError:
            winner = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
            if winner is None:
                raise
            return self._answer_for(winner, request_hash)

    @staticmethod
    def _answer_for(record: IdempotencyRecord, request_hash: str) -> HttpResponse:
        if record.request_hash != request_hash:
            return JsonResponse(
                {"code": "idempotency_key_reused", "message": f"this {HEADER} was used with a different request",
                 "details": {"header": HEADER}},
                status=422,
            )
        return _replay(record)

