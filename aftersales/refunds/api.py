"""HTTP endpoints for refunds: ask, approve, retry, the gateways' callbacks, reconciliation."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from aftersales.core import clock
from aftersales.stores.auth import request_actor

from . import selectors, services
from .models import ChargeRefund, ItemStatus, Refund, RefundStatus
from .schemas import (
    ERROR_RESPONSES,
    IDEMPOTENT,
    CancelIn,
    ChargeOut,
    ConsentIn,
    PaybackOut,
    ReconcileIn,
    RefundIn,
    RefundOut,
    ReportOut,
    ShippingRefundIn,
)

router = Router(tags=["refunds"])


def _out(refund: Refund) -> dict[str, Any]:
    items = list(refund.items.all())
    unpaid = refund.status != RefundStatus.SUCCEEDED or any(i.status != ItemStatus.SUCCEEDED for i in items)
    return {
        **{f: getattr(refund, f) for f in RefundOut.model_fields if f not in ("items", "overdue")},
        "overdue": bool(refund.due_at and unpaid and refund.due_at < clock.now()),
        "items": [{**{f: getattr(i, f) for f in ("id", "order_line_id", "method", "amount", "status", "gateway",
                                                 "gateway_reference", "failure_reason", "succeeded_at",
                                                 "cancelled_by", "cancelled_at")},
                   "attempts": list(i.attempts.all())} for i in items],
    }


@router.post("/cases/{case_id}/refunds", response={201: RefundOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
             summary="Ask for a refund step on a case in `refunding`",
             description="Writes the ledger rows (per line and per payment method) and pays through the gateway "
                         "after the commit; the case moves to refunded when the gateway confirms. Above the store's "
                         "threshold the step waits for finance (`pending_approval`). Errors: case_not_refunding, "
                         "refund_already_requested, nothing_to_refund, store_credit_needs_consent, "
                         "refund_exceeds_paid (409), amount_exceeds_paid (422), permission_denied (403).")
def request_refund(request: HttpRequest, case_id: int, body: RefundIn) -> Status[dict[str, Any]]:
    actor = request_actor(request)
    selectors.refunds_of_case(actor, case_id)  # 404 before 403 for a case the caller cannot see
    refund = services.request_refund(actor=actor, case_id=case_id, amount=body.amount,
                                     to_store_credit=body.to_store_credit, final=body.final)
    return Status(201, _out(selectors.get_refund(actor, refund.pk)))


@router.post("/cases/{case_id}/shipping-refunds", response={201: RefundOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Refund shipping the shop pays, inside its ceiling",
             description="`return`: the buyer's return postage, up to the store's ceiling per case; `outbound`: the "
                         "order's shipping fee, up to what the order paid for it over all its cases. Only when the "
                         "case's decision has the shop pay that leg. Paid through the ledger (payment ceilings, "
                         "gateway confirmation). Errors: invalid_leg, invalid_amount, amount_exceeds_ceiling (422); "
                         "shop_does_not_pay_shipping, refund_exceeds_ceiling, refund_exceeds_payment, "
                         "action_not_allowed (409).")
def shipping_refund(request: HttpRequest, case_id: int, body: ShippingRefundIn) -> Status[dict[str, Any]]:
    actor = request_actor(request)
    selectors.refunds_of_case(actor, case_id)
    refund = services.request_shipping_refund(actor=actor, case_id=case_id, leg=body.leg, amount=body.amount)
    return Status(201, _out(selectors.get_refund(actor, refund.pk)))


@router.get("/cases/{case_id}/charges", response={200: list[ChargeOut], **ERROR_RESPONSES},
            summary="What the buyer is charged for dearer replacements, with the gateway attempts")
def list_charges(request: HttpRequest, case_id: int) -> list[Any]:
    return [_charge_out(c) for c in selectors.charges_of_case(request_actor(request), case_id)]


def _charge_out(charge: Any) -> dict[str, Any]:
    payback = ChargeRefund.objects.filter(store_id=charge.store_id, charge_id=charge.pk).first()
    return {**{f: getattr(charge, f) for f in ChargeOut.model_fields if f not in ("attempts", "payback")},
            "attempts": list(charge.attempts.all()),
            "payback": None if payback is None else {
                **{f: getattr(payback, f) for f in PaybackOut.model_fields if f != "attempts"},
                "attempts": list(payback.attempts.order_by("number"))}}


@router.get("/cases/{case_id}/refunds", response={200: list[RefundOut], **ERROR_RESPONSES},
            summary="The refund steps of a case, with their ledger rows, attempts and due date")
def list_refunds(request: HttpRequest, case_id: int) -> list[dict[str, Any]]:
    return [_out(r) for r in selectors.refunds_of_case(request_actor(request), case_id)]


@router.post("/cases/{case_id}/store-credit-consent", response={201: dict[str, Any], **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="The buyer agrees to store credit instead of money")
def consent(request: HttpRequest, case_id: int, body: ConsentIn) -> Status[dict[str, Any]]:
    given = services.give_store_credit_consent(actor=request_actor(request), case_id=case_id, wording=body.wording)
    return Status(201, {"case_id": given.case_id, "given_at": given.given_at.isoformat(), "wording": given.wording})


@router.get("/refunds/overdue", response={200: list[RefundOut], **ERROR_RESPONSES},
            summary="Unpaid refund steps past their due date, most overdue first")
def overdue(request: HttpRequest) -> list[dict[str, Any]]:
    return [_out(r) for r in selectors.overdue_refunds(request_actor(request))]


# Before /refunds/{refund_id}, so that "reconciliation" is never read as a refund id.
@router.get("/refunds/reconciliation/reports", response={200: list[ReportOut], **ERROR_RESPONSES},
            summary="Daily reconciliation reports, newest first")
def reports(request: HttpRequest) -> list[Any]:
    return selectors.reconciliation_reports(request_actor(request))


@router.post("/refunds/reconciliation", response={200: ReportOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
             summary="Reconcile one day now (the daily task does it for yesterday)")
def reconcile(request: HttpRequest, body: ReconcileIn) -> Any:
    return services.run_reconciliation(actor=request_actor(request), day=body.day)


@router.get("/refunds/{refund_id}", response={200: RefundOut, **ERROR_RESPONSES})
def get_refund(request: HttpRequest, refund_id: int) -> dict[str, Any]:
    return _out(selectors.get_refund(request_actor(request), refund_id))


@router.post("/refunds/{refund_id}/approve", response={200: RefundOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
             summary="Finance approves a refund step above the threshold",
             description="Errors: not_pending_approval (409), permission_denied (403, not finance).")
def approve(request: HttpRequest, refund_id: int) -> dict[str, Any]:
    actor = request_actor(request)
    selectors.get_refund(actor, refund_id)
    services.approve_refund(actor=actor, refund_id=refund_id)
    return _out(selectors.get_refund(actor, refund_id))


@router.post("/refunds/items/{item_id}/retry", response={200: RefundOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
             summary="Retry a failed or unconfirmed ledger row",
             description="Asks the gateway about the last attempt's key first; pays again only after a known "
                         "failure. Errors: already_refunded, not_approved (409).")
def retry(request: HttpRequest, item_id: int) -> dict[str, Any]:
    actor = request_actor(request)
    item = services.retry_item(actor=actor, item_id=item_id)
    return _out(selectors.get_refund(actor, item.refund_id))


@router.post("/refunds/items/{item_id}/cancel", response={200: RefundOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Finance cancels a failed ledger row instead of retrying it",
             description="Releases its amount from the line's, the payment's and the shipping leg's totals; a final "
                         "step becomes non-final so the case can be refunded another way. Errors: not_failed (409, "
                         "only a row the gateway refused), permission_denied (403, not finance).")
def cancel_item(request: HttpRequest, item_id: int, body: CancelIn) -> dict[str, Any]:
    actor = request_actor(request)
    item = services.cancel_item(actor=actor, item_id=item_id, reason=body.reason)
    return _out(selectors.get_refund(actor, item.refund_id))


@router.get("/refunds/charges/{charge_id}", response={200: ChargeOut, **ERROR_RESPONSES})
def get_charge(request: HttpRequest, charge_id: int) -> dict[str, Any]:
    return _charge_out(selectors.get_charge(request_actor(request), charge_id))


@router.post("/refunds/charges/{charge_id}/retry", response={200: ChargeOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Retry a failed or unconfirmed charge",
             description="Asks the gateway about the last key first; charges again only after a known failure. "
                         "Errors: already_charged, charge_cancelled (409).")
def retry_charge(request: HttpRequest, charge_id: int) -> dict[str, Any]:
    actor = request_actor(request)
    selectors.get_charge(actor, charge_id)
    return _charge_out(services.retry_charge(actor=actor, charge_id=charge_id))


@router.post("/refunds/charges/{charge_id}/payback/retry", response={200: ChargeOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Retry paying back a charged difference whose exchange was given up",
             description="Asks the gateway about the last key first; sends a new key only after a known failure. "
                         "Errors: already_refunded (409), not_found (no payback for this charge).")
def retry_payback(request: HttpRequest, charge_id: int) -> dict[str, Any]:
    actor = request_actor(request)
    selectors.get_charge(actor, charge_id)
    services.retry_charge_refund(actor=actor, charge_id=charge_id)
    return _charge_out(selectors.get_charge(actor, charge_id))


@router.post("/refunds/callbacks/{gateway}", auth=None, response={200: dict[str, Any], **ERROR_RESPONSES},
             summary="A payment gateway confirms a refund (signed)",
             description="Unauthenticated: the gateway's signature is the proof. Errors: bad_signature (401, logged), "
                         "not_found (unknown gateway or attempt).")
def callback(request: HttpRequest, gateway: str) -> dict[str, Any]:
    headers = {k: v for k, v in request.headers.items()}
    changed = services.handle_callback(gateway_name=gateway, body=request.body, headers=headers)
    return {"ok": True, "changed": changed}
