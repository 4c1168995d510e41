"""HTTP endpoint of the policy engine: POST facts, get the decision (mounted at /api/v1/policy).

Stateless: nothing is read from or written to the database, so the same call can preview a decision
in the console, check an integration, or replay a stored case. Authentication is applied where the
router is mounted.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Body, Router

from aftersales.core.errors import DomainError
from aftersales.policies.engine import evaluate
from aftersales.policies.facts import FactsError, facts_from_dict
from aftersales.policies.schemas import EVALUATE_EXAMPLE, DecisionOut, FactsIn, PolicyErrorOut
from aftersales.stores.permissions import POLICY_EVALUATE

router = Router(tags=["policy"])


@router.post(
    "/evaluate",
    response={200: DecisionOut, 422: PolicyErrorOut},
    summary="Decide an after-sales request from facts",
    description=(
        "Applies the statutory floor of the store's jurisdiction, the platform overlay and the store's "
        "promises, and returns the open and closed remedies with the rule and source behind each, who "
        "pays each shipping leg, the refund and its split over the original payments, deadlines, "
        "evidence to ask for, and flags for store admins. Decimals are strings; times carry offsets."
    ),
    by_alias=True,
)
def evaluate_facts(request: HttpRequest, payload: FactsIn = Body(..., openapi_examples={  # noqa: B008
    "taobao_no_reason_partial_return": {
        "summary": "Taobao apparel, no-reason return of one of two items that broke a 满减",
        "value": EVALUATE_EXAMPLE,
    }
})) -> dict[str, Any]:
    request.auth.require(POLICY_EVALUATE)  # type: ignore[attr-defined]
    try:
        decision = evaluate(facts_from_dict(payload.as_facts_json()))
    except FactsError as error:
        raise DomainError(error.code, error.message, details={"field": error.field}, status=422) from error
    return decision.to_dict()
