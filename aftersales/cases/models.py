"""The after-sales case (售后单): what was asked, about which lines, and everything that happened to it."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel
from aftersales.core.rows import new_row

from .states import Kind, Status

if TYPE_CHECKING:
    from aftersales.stores.permissions import Actor

KIND_CHOICES = [(kind, f"{zh} / {en}") for kind, (zh, en) in Kind.LABELS.items()]
STATUS_CHOICES = [(status, f"{zh} / {en}") for status, (zh, en) in Status.LABELS.items()]


class Channel(models.TextChoices):
    WEB = "web", _("Web portal")
    API = "api", _("API")
    EMAIL = "email", _("E-mail")
    CHAT = "chat", _("Chat")
    PHONE = "phone", _("Phone")
    PLATFORM = "platform", _("Marketplace platform")


class Priority(models.IntegerChoices):
    LOW = 1, _("Low")
    NORMAL = 2, _("Normal")
    HIGH = 3, _("High")
    URGENT = 4, _("Urgent")


class ReasonCode(StoreScopedModel):
    """A reason a buyer can give. `category` is what the policy engine understands; the labels are the store's."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="reason_codes")
    code = models.SlugField(_("code"), max_length=40)
    category = models.CharField(_("policy category"), max_length=40)
    label_zh = models.CharField(_("label (Chinese)"), max_length=80)
    label_en = models.CharField(_("label (English)"), max_length=80)
    requires_evidence = models.BooleanField(_("requires photos"), default=False)
    active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "code"]
        constraints = [models.UniqueConstraint(fields=["store", "code"], name="reasoncode_unique_code")]

    def __str__(self) -> str:
        return f"{self.code} ({self.label_zh})"


class Case(StoreScopedModel):
    # No index of its own: the store-first indexes below serve every lookup by store, and each index is
    # written again by every new case.
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="cases", db_index=False)
    number = models.CharField(_("case number"), max_length=24)
    kind = models.CharField(_("kind"), max_length=20, choices=KIND_CHOICES)
    status = models.CharField(_("status"), max_length=24, choices=STATUS_CHOICES)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    buyer = models.ForeignKey("stores.Buyer", on_delete=models.PROTECT, related_name="cases")
    reason = models.ForeignKey(ReasonCode, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("channel"), max_length=12, choices=Channel.choices, default=Channel.WEB)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_cases"
    )
    requested_amount = models.DecimalField(_("requested refund"), max_digits=12, decimal_places=2, null=True, blank=True)
    offer_amount = models.DecimalField(_("offered refund"), max_digits=12, decimal_places=2, null=True, blank=True)
    refund_amount = models.DecimalField(_("refunded"), max_digits=12, decimal_places=2, null=True, blank=True)
    quote_amount = models.DecimalField(_("repair quote"), max_digits=12, decimal_places=2, null=True, blank=True)
    return_carrier = models.CharField(_("return carrier"), max_length=40, blank=True)
    return_tracking_number = models.CharField(_("return tracking number"), max_length=64, blank=True)
    reship_carrier = models.CharField(_("reship carrier"), max_length=40, blank=True)
    reship_tracking_number = models.CharField(_("reship tracking number"), max_length=64, blank=True)
    rejection_reason = models.TextField(_("rejection reason"), blank=True)
    # The policy decision as it was made, so a later change of policy never rewrites history.
    decision: models.JSONField[Any] = models.JSONField(_("policy decision"), null=True, blank=True)
    # The next thing that will happen on its own if nobody acts, and when (advanced by the sweep).
    deadline_at = models.DateTimeField(_("deadline"), null=True, blank=True)
    deadline_rule = models.CharField(_("deadline rule"), max_length=60, blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=False)
    updated_at = models.DateTimeField(_("updated at"))
    status_changed_at = models.DateTimeField(_("status changed at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    rating_comment = models.TextField(_("rating comment"), blank=True)

    # Not a column: the lines `create_case` just wrote, so its caller answers without reading them back.
    written_lines: list[CaseLine] | None = None

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "number"], name="case_unique_number"),
            models.CheckConstraint(condition=models.Q(rating__isnull=True) | models.Q(rating__range=(1, 5)),
                                   name="case_rating_range"),
        ]
        # Every list the API or the console shows is "this store, some filter, newest first"; each index
        # starts with the store and ends with (created_at, id) so the first page is an index range scan.
        indexes = [
            models.Index(fields=["store", "-created_at", "-id"], name="case_store_created"),
            models.Index(fields=["store", "status", "-created_at", "-id"], name="case_store_status"),
            models.Index(fields=["store", "kind", "-created_at", "-id"], name="case_store_kind"),
            models.Index(fields=["store", "assignee", "-created_at", "-id"], name="case_store_assignee"),
            models.Index(fields=["store", "buyer", "-created_at", "-id"], name="case_store_buyer"),
            models.Index(fields=["store", "order", "-created_at", "-id"], name="case_store_order"),
            models.Index(fields=["deadline_at"], name="case_deadline", condition=models.Q(deadline_at__isnull=False)),
            # The supervisor's workload: open cases per agent with their next deadline.
            models.Index(fields=["store", "status", "assignee", "deadline_at"], name="case_store_workload"),
        ]

    def __str__(self) -> str:
        return self.number


class CaseLine(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    # Looked up through the unique (case, order line) index; one on the case alone would only be written.
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="lines", db_index=False)
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="case_lines")
    quantity = models.PositiveIntegerField(_("quantity"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "order_line"], name="caseline_unique_order_line"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="caseline_quantity_positive"),
        ]


class Visibility(models.TextChoices):
    PUBLIC = "public", _("Public message")
    INTERNAL = "internal", _("Internal note")


class Message(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="messages")
    visibility = models.CharField(_("visibility"), max_length=10, choices=Visibility.choices)
    author_kind = models.CharField(max_length=10)
    author_label = models.CharField(max_length=120)
    author_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    body = models.TextField(_("message"))
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["case", "created_at"], name="message_case_created")]


class Attachment(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments")
    file = models.FileField(upload_to="evidence/%Y/%m/")
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by_kind = models.CharField(max_length=10)
    uploaded_by_label = models.CharField(max_length=120)
    created_at = models.DateTimeField()


class AppendOnlyQuerySet(models.QuerySet["TimelineEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("the timeline is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("the timeline is append-only")

    def for_store(self, store: Any) -> AppendOnlyQuerySet:
        return self.filter(store_id=store if isinstance(store, int) else store.pk)


class TimelineEntry(models.Model):
    """One thing that happened to a case. Written once, never changed or removed."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    # Read through timeline_case_at (case, at, id); an index on the case alone would only be written.
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="timeline", db_index=False)
    at = models.DateTimeField()
    event = models.CharField(max_length=40)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    actor_kind = models.CharField(max_length=10)
    actor_label = models.CharField(max_length=120)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    data: models.JSONField[Any] = models.JSONField(default=dict)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["case", "at", "id"], name="timeline_case_at")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("the timeline is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("the timeline is append-only")

    @classmethod
    def of(cls, case: Case, actor: Actor, event: str, at: datetime.datetime, *, from_status: str = "",
           to_status: str = "", data: Mapping[str, Any] | None = None) -> TimelineEntry:
        """An unsaved entry: what happened to `case`, done by `actor`. Every app that writes to a case's
        history builds its entries here, so they all name the actor the same way."""
        return new_row(cls, store_id=case.store_id, case=case, at=at, event=event, from_status=from_status,
                       to_status=to_status, actor_kind=actor.kind, actor_label=actor.label[:120],
                       actor_user_id=actor.user_id, data=dict(data or {}))
