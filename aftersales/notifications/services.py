"""Every write of the notifications app: the outbox, fan-out to recipients, delivery with retries,
webhook endpoints and their secrets, preferences.

The flow: a domain event is recorded in the outbox inside the transaction that caused it
(`record_event`); after the commit a task fans it out to deliveries (`dispatch_event`), one per
recipient and channel, and tasks send them (`deliver`). A delivery is claimed with a short lease,
sent without holding any lock, and only then marked sent, so a worker that dies in between leaves it
to the sweep, which sends it again with the same event id. Receivers de-duplicate on that id.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce

from aftersales.core import clock, kicks
from aftersales.core.bulk_writes import after_commit, insert_later, insert_rows
from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.core.rows import new_row
from aftersales.stores import permissions as perm
from aftersales.stores.models import Buyer, Membership, Role
from aftersales.stores.permissions import Actor

from . import rendering
from .models import (
    BuyerPreference,
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    OutboxEvent,
    ServiceMailbox,
    StaffPreference,
    WebhookEndpoint,
)
from .providers import sms as sms_provider
from .providers import webhook as webhook_provider

logger = logging.getLogger(__name__)

# The events we tell people and systems about.
BUYER_EVENTS = frozenset({
    "case.created", "case.decided", "case.counter_offer", "case.return_label_ready", "case.received",
    "case.inspected", "case.refunded", "case.reshipped", "case.message_posted", "case.timeout_fired",
})
STAFF_EVENTS = frozenset({
    "case.created", "case.assigned", "case.message_posted", "case.timeout_fired", "sla.warning", "sla.breached",
    "webhook.endpoint_failing",
})
WEBHOOK_EVENTS = frozenset(BUYER_EVENTS | {"case.status_changed", "case.assigned", "sla.warning", "sla.breached"})
EVENT_TYPES = sorted(BUYER_EVENTS | STAFF_EVENTS | WEBHOOK_EVENTS)
DEFAULT_STAFF_EVENTS = ("case.assigned", "case.message_posted", "case.timeout_fired", "sla.warning", "sla.breached",
                        "webhook.endpoint_failing")

_ACTION_EVENTS = {
    "approve": "case.decided", "reject": "case.decided", "arbitrate": "case.decided",
    "counter_offer": "case.counter_offer", "mark_received": "case.received", "record_inspection": "case.inspected",
    "refund": "case.refunded", "reship": "case.reshipped",
}
# Alerts the SLA sweep raises on a deadline without moving the case (aftersales.sla.services.ALERTS).
_TIMEOUT_ALERTS = frozenset({"case.refund_due_soon", "case.refund_overdue", "case.refund_violation",
                             "case.first_response_overdue"})


def event_types_for(domain_event: str, payload: dict[str, Any]) -> list[str]:
    """The outbox event types a domain event becomes (none for those nobody outside is told about)."""
    if domain_event == "case.transitioned":
        types = [_ACTION_EVENTS.get(payload.get("action", ""), "case.status_changed")]
        if payload.get("rule"):
            types.append("case.timeout_fired")
        return types
    if domain_event == "case.message":
        return ["case.message_posted"]
    if domain_event in _TIMEOUT_ALERTS:
        return ["case.timeout_fired"]
    if domain_event in ("sla.warning", "sla.breached", "case.created", "case.assigned", "case.return_label_ready"):
        return [domain_event]
    return []


# ---------------------------------------------------------------------------------------------- outbox


def record_event(*, store_id: int, event: str, payload: dict[str, Any]) -> OutboxEvent:
    """Writes the outbox row in the caller's transaction; the fan-out is kicked only if it commits."""
    case_id = payload.get("case_id")
    row = new_row(OutboxEvent, store_id=store_id, type=event, case_id=case_id, payload=payload, created_at=clock.now())
    # Inside a write that puts all its rows in one statement (opening a case), this row joins them.
    insert_later(OutboxEvent, [row])
    event_id = row.pk
    after_commit(lambda: _kick_dispatch(event_id))
    return row


def on_domain_event(domain_event: str, payload: dict[str, Any]) -> None:
    """The in-transaction listener (see aftersales.core.events)."""
    store_id = payload.get("store_id")
    if store_id is None:
        return
    for event_type in event_types_for(domain_event, payload):
        record_event(store_id=store_id, event=event_type, payload={**payload, "source_event": domain_event})


def on_domain_events(domain_event: str, payloads: list[dict[str, Any]]) -> None:
    """The bulk form of `on_domain_event`, for `core.events.publish_many` (a sweep moving thousands of
    cases): the same outbox rows in one INSERT, their fan-out kicked in batches after the commit."""
    now = clock.now()
    rows = [OutboxEvent(store_id=payload["store_id"], type=event_type, case_id=payload.get("case_id"),
                        payload={**payload, "source_event": domain_event}, created_at=now)
            for payload in payloads if payload.get("store_id") is not None
            for event_type in event_types_for(domain_event, payload)]
    if not rows:
        return

    insert_rows(OutboxEvent, rows)
    event_ids = [str(row.pk) for row in rows]
    transaction.on_commit(lambda: _kick_dispatch_many(event_ids))


on_domain_event.many = on_domain_events  # type: ignore[attr-defined]


def _kick_dispatch_many(event_ids: list[str], chunk: int = 200) -> None:
    from . import tasks

    try:
        for start in range(0, len(event_ids), chunk):
            tasks.dispatch_events.delay(event_ids[start:start + chunk])
    except Exception:  # the change is committed; the sweep dispatches what a lost kick left behind
        logger.exception("notifications: could not queue dispatch of %s events", len(event_ids))


def _kick_dispatch(event_id: uuid.UUID) -> None:
    from . import tasks

    try:
        kicks.send(tasks.dispatch_event, str(event_id))
    except Exception:  # the change is committed; the sweep dispatches what a lost kick left behind
        logger.exception("notifications: could not queue dispatch of %s", event_id)


def _kick_deliveries(delivery_ids: Sequence[int]) -> None:
    from . import tasks

    if not delivery_ids:
        return
    try:
        if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
            # In-process: one batch, sent concurrently, so one slow endpoint costs its own timeout only.
            deliver(delivery_ids=delivery_ids)
        else:
            # With a broker: a task per delivery, so a slow endpoint holds one worker slot, not the others.
            for delivery_id in delivery_ids:
                tasks.deliver.delay(delivery_id)
    except Exception:
        logger.exception("notifications: could not queue deliveries %s", list(delivery_ids)[:10])


# --------------------------------------------------------------------------------------------- fan-out


@dataclass(frozen=True)
class _Recipient:
    channel: str
    target: str
    language: str
    buyer_id: int | None = None
    user_id: int | None = None
    endpoint_id: int | None = None


def _buyer_recipients(event: OutboxEvent) -> list[_Recipient]:
    from aftersales.cases.models import Case

    if event.type not in BUYER_EVENTS or event.case_id is None:
        return []
    payload = event.payload
    # The buyer is not told about their own message, nor about internal moves of a timeout that changed nothing.
    if event.type == "case.message_posted" and payload.get("author_kind") == "buyer":
        return []
    if event.type == "case.timeout_fired" and event.payload.get("source_event") != "case.transitioned":
        return []
    buyer_id = Case.objects.filter(store_id=event.store_id, pk=event.case_id).values_list("buyer_id", flat=True).first()
    buyer = Buyer.objects.filter(store_id=event.store_id, pk=buyer_id).first() if buyer_id is not None else None
    if buyer is None:
        return []
    preference = BuyerPreference.objects.filter(store_id=event.store_id, buyer=buyer).first()
    wants_email = preference.email if preference else True
    wants_sms = (preference.sms and preference.sms_opted_out_at is None) if preference else True
    language = rendering.language_of(buyer.language)
    found = []
    if buyer.email and wants_email:
        found.append(_Recipient(Channel.EMAIL, buyer.email.lower(), language, buyer_id=buyer.pk))
    if buyer.phone and wants_sms and event.type in rendering.SMS_EVENTS:
        found.append(_Recipient(Channel.SMS, buyer.phone, language, buyer_id=buyer.pk))
    return found


def _staff_recipients(event: OutboxEvent) -> list[_Recipient]:
    from django.contrib.auth import get_user_model

    from aftersales.cases.models import Case

    if event.type not in STAFF_EVENTS:
        return []
    payload = event.payload
    user_ids: set[int] = set()
    if event.type == "webhook.endpoint_failing":
        user_ids.update(Membership.objects.filter(store_id=event.store_id, role=Role.ADMIN)
                        .values_list("user_id", flat=True))
    elif event.type == "case.message_posted" and payload.get("author_kind") != "buyer":
        return []
    else:
        assignee = payload.get("assignee_id")
        if assignee is None and event.case_id is not None:
            assignee = (Case.objects.filter(store_id=event.store_id, pk=event.case_id)
                        .values_list("assignee_id", flat=True).first())
        if assignee is not None:
            user_ids.add(int(assignee))
        if payload.get("supervisor_id"):
            user_ids.add(int(payload["supervisor_id"]))
    if not user_ids:
        return []
    members = set(Membership.objects.filter(store_id=event.store_id, user_id__in=user_ids)
                  .values_list("user_id", flat=True))
    chosen = dict(StaffPreference.objects.filter(store_id=event.store_id, user_id__in=members)
                  .values_list("user_id", "events"))
    found = []
    for user_id, email in get_user_model().objects.filter(pk__in=members).values_list("pk", "email"):
        events = chosen.get(user_id, DEFAULT_STAFF_EVENTS)
        # Admins always hear that an integration is failing: nobody else can repair it.
        if email and (event.type in events or event.type == "webhook.endpoint_failing"):
            found.append(_Recipient(Channel.EMAIL, email.lower(), rendering.language_of(settings.LANGUAGE_CODE),
                                    user_id=user_id))
    return found


def _webhook_recipients(event: OutboxEvent) -> list[_Recipient]:
    if event.type not in WEBHOOK_EVENTS:
        return []
    endpoints = WebhookEndpoint.objects.filter(store_id=event.store_id, is_active=True)
    return [_Recipient(Channel.WEBHOOK, f"endpoint:{e.pk}", "", endpoint_id=e.pk)
            for e in endpoints if e.wants(event.type)]


def dispatch_event(*, event_id: uuid.UUID | str) -> list[int]:
    """Writes the deliveries of one event, once: a second run (a retried task, the sweep racing the
    kick) finds the event dispatched, or hits the unique constraint, and adds nothing."""
    now = clock.now()
    with transaction.atomic():
        event = OutboxEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.dispatched_at is not None:
            return []
        recipients = [*_buyer_recipients(event), *_staff_recipients(event), *_webhook_recipients(event)]
        Delivery.objects.bulk_create([
            Delivery(store_id=event.store_id, event=event, channel=r.channel, target=r.target, language=r.language,
                     buyer_id=r.buyer_id, user_id=r.user_id, endpoint_id=r.endpoint_id, next_attempt_at=now,
                     created_at=now)
            for r in recipients
        ], ignore_conflicts=True)
        event.dispatched_at = now
        event.save(update_fields=["dispatched_at"])
        ids = list(Delivery.objects.filter(store_id=event.store_id, event=event, status=DeliveryStatus.PENDING)
                   .values_list("pk", flat=True))
        transaction.on_commit(lambda: _kick_deliveries(ids))
    return ids


def dispatch_pending(*, limit: int = 500) -> int:
    """Events whose kick was lost (the process died right after the commit). Across stores: the sweep
    serves them all and each event names its own."""
    ids = list(OutboxEvent.objects.filter(dispatched_at__isnull=True).order_by("created_at")
               .values_list("pk", flat=True)[:limit])
    for event_id in ids:
        dispatch_event(event_id=event_id)
    return len(ids)


# -------------------------------------------------------------------------------------------- delivery

RETRY_WINDOW = dt.timedelta(hours=24)
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3 * 3600.0


def backoff(attempts: int, *, rng: Callable[[], float] = random.random) -> dt.timedelta:
    """The wait after the n-th failed attempt: 30 s doubling up to 3 h, with "equal jitter" (half fixed,
    half random) so endpoints that failed together do not all come back in the same second."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=delay / 2 + rng() * delay / 2)


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=4 * _timeout() + 60)


def _timeout() -> float:
    return float(getattr(settings, "AFTERSALES_WEBHOOK_TIMEOUT_SECONDS", 5.0))


def _claim(*, now: dt.datetime, ids: Sequence[int] | None = None, limit: int = 200) -> uuid.UUID:
    """Takes a lease on due, pending deliveries (these ids, or the next `limit`). A conditional UPDATE,
    so two sweeps or a sweep and a kick never both take one delivery."""
    token = uuid.uuid4()
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    if ids is None:
        ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    if ids:
        due.filter(pk__in=list(ids)).update(claim=token, claimed_until=now + _lease())
    return token


@dataclass
class _Outcome:
    delivery_id: int
    ok: bool
    started_at: dt.datetime
    duration_ms: int = 0
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str = ""
    response_status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    error: str = ""


@dataclass
class _Job:
    delivery: Delivery
    send: Callable[[], _Outcome]


def _webhook_body(event: OutboxEvent) -> bytes:
    document = {"id": str(event.pk), "type": event.type, "created_at": event.created_at.isoformat(),
                "store_id": event.store_id, "data": event.payload}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def webhook_request(endpoint: WebhookEndpoint, event: OutboxEvent, delivery_id: int, *,
                    now: dt.datetime) -> tuple[bytes, dict[str, str]]:
    body = _webhook_body(event)
    timestamp = int(now.timestamp())
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        keys.append(endpoint.previous_secret)
    headers = {
        "X-Aftersales-Event-Id": str(event.pk),
        "X-Aftersales-Event": event.type,
        "X-Aftersales-Delivery": str(delivery_id),
        "X-Aftersales-Timestamp": str(timestamp),
        "X-Aftersales-Signature": webhook_provider.signature_header(keys, timestamp, body),
    }
    return body, headers


def _prepare(delivery: Delivery, now: dt.datetime) -> _Job:
    event = delivery.event
    if delivery.channel == Channel.WEBHOOK:
        endpoint = delivery.endpoint
        assert endpoint is not None
        body, headers = webhook_request(endpoint, event, delivery.pk, now=now)
        url, timeout = endpoint.url, _timeout()

        def send_webhook() -> _Outcome:
            result = webhook_provider.post(url, body, headers, timeout=timeout)
            return _Outcome(delivery.pk, result.ok, now, duration_ms=result.duration_ms, request_headers=headers,
                            request_body=body.decode(), response_status=result.status,
                            response_headers=result.headers, response_body=result.body,
                            error=result.error or ("" if result.ok else f"HTTP {result.status}"))
        return _Job(delivery, send_webhook)
    if delivery.channel == Channel.EMAIL:
        message = rendering.email_for(delivery, event)

        def send_email() -> _Outcome:
            return _timed(delivery.pk, now, lambda: message.send(), {"To": delivery.target,
                                                                     "Subject": str(message.subject)})
        return _Job(delivery, send_email)
    text = rendering.sms_for(delivery, event)

    def send_sms() -> _Outcome:
        provider = sms_provider.get_provider()
        return _timed(delivery.pk, now, lambda: provider.send(sms_provider.SmsMessage(to=delivery.target, body=text)),
                      {"To": delivery.target}, body=text)
    return _Job(delivery, send_sms)


def _timed(delivery_id: int, now: dt.datetime, call: Callable[[], object], headers: dict[str, str],
           body: str = "") -> _Outcome:
    started = time.perf_counter()
    try:
        call()
    except Exception as exc:
        return _Outcome(delivery_id, False, now, duration_ms=int((time.perf_counter() - started) * 1000),
                        request_headers=headers, request_body=body, error=repr(exc)[:2000])
    return _Outcome(delivery_id, True, now, duration_ms=int((time.perf_counter() - started) * 1000),
                    request_headers=headers, request_body=body)


def _workers() -> int:
    return int(getattr(settings, "AFTERSALES_DELIVERY_WORKERS", 8))


def _send_all(jobs: list[_Job]) -> list[_Outcome]:
    if len(jobs) == 1:
        return [jobs[0].send()]
    # Threads only for the network: every database read and write stays on the calling thread.
    with ThreadPoolExecutor(max_workers=min(_workers(), len(jobs)), thread_name_prefix="aftersales-deliver") as pool:
        return list(pool.map(lambda job: job.send(), jobs))


def _record(token: uuid.UUID, outcomes: list[_Outcome], now: dt.datetime) -> None:
    """Marks what was sent and schedules the retries, in one transaction; deliveries whose lease was
    taken over meanwhile are left to their new owner."""
    by_id = {o.delivery_id: o for o in outcomes}
    failing: list[WebhookEndpoint] = []
    recovered: set[int] = set()
    with transaction.atomic():
        rows = list(Delivery.objects.select_related("endpoint").filter(pk__in=list(by_id), claim=token))
        sent_ids = []
        for row in rows:
            outcome = by_id[row.pk]
            if outcome.ok:
                sent_ids.append(row.pk)
                if row.endpoint is not None and row.endpoint.failing_since is not None:
                    recovered.add(row.endpoint.pk)
                continue
            # Failures one by one (they are few, and each has its own next attempt); successes below in one
            # statement, since that is nearly every row of a batch.
            row.attempts += 1
            row.first_attempt_at = row.first_attempt_at or outcome.started_at
            row.claim = None
            row.claimed_until = None
            row.last_error = outcome.error[:2000]
            if now - row.first_attempt_at >= RETRY_WINDOW:
                row.status = DeliveryStatus.FAILED
                if row.endpoint is not None and row.endpoint.failing_since is None:
                    failing.append(row.endpoint)
            else:
                row.next_attempt_at = now + backoff(row.attempts)
            row.save(update_fields=["attempts", "first_attempt_at", "claim", "claimed_until", "status", "last_error",
                                    "next_attempt_at"])
        if sent_ids:
            Delivery.objects.filter(pk__in=sent_ids, claim=token).update(
                status=DeliveryStatus.SENT, sent_at=now, attempts=F("attempts") + 1, last_error="", claim=None,
                claimed_until=None, first_attempt_at=Coalesce(F("first_attempt_at"), Value(now)))
        DeliveryAttempt.objects.bulk_create([
            DeliveryAttempt(store_id=row.store_id, delivery_id=row.pk, attempted_at=by_id[row.pk].started_at,
                            duration_ms=by_id[row.pk].duration_ms, request_headers=by_id[row.pk].request_headers,
                            request_body=by_id[row.pk].request_body, response_status=by_id[row.pk].response_status,
                            response_headers=by_id[row.pk].response_headers,
                            response_body=by_id[row.pk].response_body, error=by_id[row.pk].error,
                            succeeded=by_id[row.pk].ok)
            for row in rows
        ], batch_size=500)
        if recovered:
            WebhookEndpoint.objects.filter(pk__in=recovered).update(failing_since=None)
        for endpoint in {e.pk: e for e in failing}.values():
            _mark_failing(endpoint, now)


def _mark_failing(endpoint: WebhookEndpoint, now: dt.datetime) -> None:
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    if updated:
        record_event(store_id=endpoint.store_id, event="webhook.endpoint_failing",
                     payload={"store_id": endpoint.store_id, "endpoint_id": endpoint.pk, "url": endpoint.url})


def deliver(*, delivery_ids: Sequence[int] | None = None, limit: int = 200, now: dt.datetime | None = None) -> int:
    """Sends these deliveries (or the next `limit` due ones) if they are still due and nobody else holds
    them. Returns how many were attempted."""
    now = now or clock.now()
    token = _claim(now=now, ids=delivery_ids, limit=limit)
    claimed = list(Delivery.objects.select_related("event", "endpoint").filter(claim=token).order_by("pk"))
    if not claimed:
        return 0
    jobs = []
    outcomes = []
    for delivery in claimed:
        try:
            jobs.append(_prepare(delivery, now))
        except Exception as exc:  # a template or a recipient that cannot be rendered is a failed attempt
            logger.exception("notifications: cannot prepare delivery %s", delivery.pk)
            outcomes.append(_Outcome(delivery.pk, False, now, error=repr(exc)[:2000]))
    outcomes.extend(_send_all(jobs))
    _record(token, outcomes, clock.now())
    return len(claimed)


def deliver_due(*, now: dt.datetime | None = None, batch: int = 200, max_batches: int | None = None) -> int:
    """Everything due, batch after batch (the sweep)."""
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        sent = deliver(limit=batch, now=now)
        if not sent:
            break
        total += sent
        batches += 1
    return total


def sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    return {"dispatched": dispatch_pending(), "attempted": deliver_due(now=now)}


# ------------------------------------------------------------------------------------------- endpoints


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _check_event_types(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    unknown = [t for t in chosen if t not in WEBHOOK_EVENTS]
    if unknown:
        raise ValidationFailed("unknown event types", field="event_types", code="invalid_event_type",
                               details={"unknown": unknown, "allowed": sorted(WEBHOOK_EVENTS)})
    return chosen


def _check_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("https://", "http://")) or len(url) > 500:
        raise ValidationFailed("the URL must start with https:// or http://", field="url", code="invalid_url")
    return url


def create_endpoint(*, actor: Actor, url: str, event_types: Sequence[str] = (), description: str = "") -> WebhookEndpoint:
    actor.require(perm.STORE_ADMIN)
    return WebhookEndpoint.objects.create(store_id=actor.store_id, url=_check_url(url),
                                          event_types=_check_event_types(event_types),
                                          description=description[:200], secret=_new_secret(),
                                          created_at=clock.now())


def _endpoint_for_update(actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    actor.require(perm.STORE_ADMIN)
    endpoint = WebhookEndpoint.objects.select_for_update().filter(store_id=actor.store_id, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("webhook endpoint")
    return endpoint


def update_endpoint(*, actor: Actor, endpoint_id: int, url: str | None = None, event_types: Sequence[str] | None = None,
                    is_active: bool | None = None, description: str | None = None) -> WebhookEndpoint:
    with transaction.atomic():
        endpoint = _endpoint_for_update(actor, endpoint_id)
        if url is not None:
            endpoint.url = _check_url(url)
        if event_types is not None:
            endpoint.event_types = _check_event_types(event_types)
        if description is not None:
            endpoint.description = description[:200]
        if is_active is not None:
            endpoint.is_active = is_active
            if is_active:
                endpoint.failing_since = None  # switched back on after a repair: judged afresh
        endpoint.save()
    return endpoint


def rotate_secret(*, actor: Actor, endpoint_id: int, overlap: dt.timedelta = dt.timedelta(hours=24)) -> WebhookEndpoint:
    """A new secret signs from now on; the old one keeps signing beside it for `overlap`, the time the
    receiver has to switch. Zero overlap ends the old secret at once (it leaked)."""
    if overlap < dt.timedelta(0) or overlap > dt.timedelta(days=7):
        raise ValidationFailed("the overlap must be between 0 and 7 days", field="overlap_hours",
                               code="invalid_overlap")
    with transaction.atomic():
        endpoint = _endpoint_for_update(actor, endpoint_id)
        endpoint.previous_secret = endpoint.secret if overlap else ""
        endpoint.previous_secret_expires_at = clock.now() + overlap if overlap else None
        endpoint.secret = _new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint


def delete_endpoint(*, actor: Actor, endpoint_id: int) -> None:
    with transaction.atomic():
        _endpoint_for_update(actor, endpoint_id).delete()


def resend_delivery(*, actor: Actor, delivery_id: int) -> Delivery:
    """Sends a delivery again now, with the same event id, whatever became of it before; a new 24-hour
    retry window starts."""
    actor.require(perm.STORE_ADMIN)
    now = clock.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(store_id=actor.store_id, pk=delivery_id).first()
        if delivery is None:
            raise NotFound("delivery")
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now
        delivery.first_attempt_at = None
        delivery.claim = None
        delivery.claimed_until = None
        delivery.save(update_fields=["status", "next_attempt_at", "first_attempt_at", "claim", "claimed_until"])
        transaction.on_commit(lambda: _kick_deliveries([delivery_id]))
    return delivery


# ----------------------------------------------------------------------------------------- preferences


def set_buyer_preferences(*, actor: Actor, buyer_id: int, email: bool | None = None,
                          sms: bool | None = None) -> BuyerPreference:
    """A buyer sets their own; staff with store.admin may set one on a buyer's request."""
    if not (actor.is_buyer and actor.buyer_id == buyer_id):
        actor.require(perm.STORE_ADMIN)
    now = clock.now()
    with transaction.atomic():
        if not Buyer.objects.filter(store_id=actor.store_id, pk=buyer_id).exists():
            raise NotFound("buyer")
        preference, _ = BuyerPreference.objects.select_for_update().get_or_create(
            store_id=actor.store_id, buyer_id=buyer_id, defaults={"updated_at": now})
        if email is not None:
            preference.email = email
        if sms is not None:
            preference.sms = sms
            # Choosing SMS again is the buyer's explicit opt-in after an opt-out by reply.
            if sms:
                preference.sms_opted_out_at = None
        preference.updated_at = now
        preference.save()
    return preference


def sms_opt_out(*, store_id: int, phone: str) -> int:
    """An opt-out reply ("TD", "STOP") from a number: no more SMS to any buyer of the store with it."""
    now = clock.now()
    count = 0
    with transaction.atomic():
        for buyer_id in Buyer.objects.filter(store_id=store_id, phone=phone.strip()).values_list("pk", flat=True):
            preference, _ = BuyerPreference.objects.select_for_update().get_or_create(
                store_id=store_id, buyer_id=buyer_id, defaults={"updated_at": now})
            preference.sms_opted_out_at = now
            preference.updated_at = now
            preference.save(update_fields=["sms_opted_out_at", "updated_at"])
            count += 1
    return count


def set_staff_preferences(*, actor: Actor, events: Sequence[str]) -> StaffPreference:
    if actor.kind != "staff" or actor.user_id is None:
        raise ValidationFailed("only staff choose which events reach them", code="not_staff")
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in STAFF_EVENTS]
    if unknown:
        raise ValidationFailed("unknown event types", field="events", code="invalid_event_type",
                               details={"unknown": unknown, "allowed": sorted(STAFF_EVENTS)})
    now = clock.now()
    preference, _ = StaffPreference.objects.update_or_create(
        store_id=actor.store_id, user_id=actor.user_id, defaults={"events": chosen, "updated_at": now})
    return preference


def set_service_mailbox(*, actor: Actor, address: str) -> ServiceMailbox:
    actor.require(perm.STORE_ADMIN)
    address = address.strip().lower()
    if "@" not in address or "+" in address.split("@")[0]:
        raise ValidationFailed("give a plain address such as service@shop.example", field="address",
                               code="invalid_address")
    if ServiceMailbox.objects.filter(address=address).exclude(store_id=actor.store_id).exists():
        raise ValidationFailed("that address belongs to another store", field="address", code="address_taken")
    mailbox, _ = ServiceMailbox.objects.update_or_create(store_id=actor.store_id, defaults={"address": address})
    return mailbox



# ------------------------------------------------------------------------------------- one-time codes


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def send_guest_code(*, store_id: int, buyer_id: int, contact: str, code: str, minutes: int) -> str:
    """Sends a guest's one-time access code to the buyer's own phone or e-mail, now, and says over
    which channel ("sms", "email", or "" when none could take it).

    Not through the outbox: the code must never be stored in clear, and it is worth nothing after a few
    minutes, so a delivery that failed is not retried; the guest asks for a new one. The channel is the
    one the guest typed (it matched the buyer's record); a phone whose owner opted out of SMS, or a
    contact the buyer has not got, falls back to the other channel the buyer has.
    """
    buyer = Buyer.objects.filter(store_id=store_id, pk=buyer_id).first()
    if buyer is None:
        return ""
    preference = BuyerPreference.objects.filter(store_id=store_id, buyer=buyer).first()
    sms_allowed = bool(buyer.phone) and (preference is None or preference.sms_opted_out_at is None)
    typed_phone = "@" not in contact and bool(_digits(contact)) and _digits(contact) == _digits(buyer.phone)
    order = [Channel.SMS, Channel.EMAIL] if typed_phone else [Channel.EMAIL, Channel.SMS]
    from aftersales.stores.models import Store

    store = Store.objects.get(pk=store_id)
    context = {"store": store, "code": code, "minutes": minutes}
    language = rendering.language_of(buyer.language)
    for channel in order:
        try:
            if channel == Channel.SMS and sms_allowed:
                text = rendering.guest_code_sms(language, context)
                sms_provider.get_provider().send(sms_provider.SmsMessage(to=buyer.phone, body=text))
                return "sms"
            if channel == Channel.EMAIL and buyer.email:
                rendering.guest_code_email(language, context, to=buyer.email).send()
                return "email"
        except Exception:  # the other channel may still reach the guest; the code itself is never logged
            logger.exception("notifications: guest code for buyer %s could not go out by %s", buyer_id, channel)
    return ""
