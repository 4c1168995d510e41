"""Shapes every API router shares: the one error answer, the Idempotency-Key header, strict input."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field


class ErrorOut(Schema):
    """Every 4xx answer of the API: a stable `code` to branch on, a message for people, and details."""

    code: str = Field(examples=["action_not_allowed"])
    message: str
    details: dict[str, Any] = Field(
        examples=[{"status": "awaiting_return", "allowed_actions": [{"action": "ship_return", "outcomes": []}]}]
    )


# Documented on every case route, so a client generator knows the failure shape as well as the success one.
ERROR_RESPONSES: dict[int, type[ErrorOut]] = {status: ErrorOut for status in (400, 401, 403, 404, 409, 422)}

# The Idempotency-Key header is read by a middleware, not by the handlers, so it is described here.
IDEMPOTENT: dict[str, Any] = {"parameters": [{
    "in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 200},
    "description": "Retry safely: the same key with the same request gets the first answer again (with "
                   "`Idempotent-Replayed: true`) and acts only once; with another request it is refused "
                   "(422 idempotency_key_reused). Keys belong to the caller; refused requests do not use them up.",
}]}


class StrictSchema(BaseModel):
    """A request body: unknown fields refused. A plain pydantic model, not a Ninja `Schema`: the
    validator a `Schema` runs on every nested object is there to read Django objects for answers, and
    a request body is plain JSON."""

    model_config = ConfigDict(extra="forbid")
