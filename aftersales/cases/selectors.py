"""Store-scoped reads of cases. A buyer sees only their own; everyone sees only their store's."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.stores.permissions import CASE_READ, Actor

from .models import Attachment, Case, CaseLine, Message, ReasonCode, TimelineEntry, Visibility


def visible_cases(actor: Actor) -> QuerySet[Case]:
    actor.require(CASE_READ)
    queryset = Case.objects.filter(store_id=actor.store_id)
    if actor.is_buyer:
        queryset = queryset.filter(buyer_id=actor.buyer_id or 0)
    return queryset


def filter_cases(
    queryset: QuerySet[Case],
    *,
    status: str | None = None,
    kind: str | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    order_id: int | None = None,
    buyer_id: int | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> QuerySet[Case]:
    if unassigned and assignee_id is not None:
        raise ValidationFailed("ask for unassigned cases or for one assignee, not both", field="unassigned",
                               code="conflicting_filters")
    if status:
        queryset = queryset.filter(status=status)
    if kind:
        queryset = queryset.filter(kind=kind)
    if unassigned:
        queryset = queryset.filter(assignee__isnull=True)
    if assignee_id is not None:
        queryset = queryset.filter(assignee_id=assignee_id)
    if order_id is not None:
        queryset = queryset.filter(order_id=order_id)
    if buyer_id is not None:
        queryset = queryset.filter(buyer_id=buyer_id)
    if created_after is not None:
        queryset = queryset.filter(created_at__gte=created_after)
    if created_before is not None:
        queryset = queryset.filter(created_at__lt=created_before)
    return queryset


def get_case(actor: Actor, case_id: int) -> Case:
    case = visible_cases(actor).select_related("store", "reason", "buyer", "order").filter(pk=case_id).first()
    if case is None:
        raise NotFound("case")
    return case


def case_lines(case: Case) -> list[CaseLine]:
    """The case's lines with their order lines, in the order they were asked for. A case just opened
    carries the lines it was written with, so answering the request costs no read."""
    if case.written_lines is not None:
        return sorted(case.written_lines, key=lambda line: line.pk)
    return list(case.lines.filter(store_id=case.store_id).select_related("order_line").order_by("id"))


def case_timeline(actor: Actor, case: Case) -> QuerySet[TimelineEntry]:
    entries = TimelineEntry.objects.filter(store_id=actor.store_id, case=case).order_by("at", "id")
    if actor.is_buyer:
        # Internal notes are never shown to the buyer, not even that one was written.
        entries = entries.exclude(event="note")
    return entries


def case_messages(actor: Actor, case: Case) -> QuerySet[Message]:
    messages = Message.objects.filter(store_id=actor.store_id, case=case).order_by("created_at", "id")
    if actor.is_buyer:
        messages = messages.filter(visibility=Visibility.PUBLIC)
    return messages


def case_attachments(actor: Actor, case: Case) -> QuerySet[Attachment]:
    return Attachment.objects.filter(store_id=actor.store_id, case=case).order_by("created_at", "id")


def reason_codes(actor: Actor) -> QuerySet[ReasonCode]:
    actor.require(CASE_READ)
    return ReasonCode.objects.filter(store_id=actor.store_id, active=True).order_by("sort_order", "code")
