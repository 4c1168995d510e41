"""The outbox and everything delivered from it: e-mail, SMS and webhooks, with their log; who wants what;
the mail that comes back in."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel


class OutboxEvent(StoreScopedModel):
    """One event worth telling, written in the same transaction as the change that caused it. Its id is
    the event id receivers see, on every attempt and every re-send, so they can drop duplicates."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # outbox_store_case serves lookups by store; every new case writes this table's indexes.
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(_("event type"), max_length=60)
    case_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    # Set once the deliveries have been written; an event left without (the kick was lost with its
    # process) is found by the sweep through the partial index.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="outbox_undispatched",
                         condition=models.Q(dispatched_at__isnull=True)),
            models.Index(fields=["store", "case_id", "created_at"], name="outbox_store_case"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    WEBHOOK = "webhook", _("Webhook")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class WebhookEndpoint(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # Event types this endpoint receives; empty means all of them.
    event_types = models.JSONField(_("event types"), default=list, blank=True)
    # The signing secret is kept in clear: we need it to sign. During a rotation the previous one also
    # signs until it expires, so receivers can switch over without losing a delivery.
    secret = models.CharField(max_length=80)
    previous_secret = models.CharField(max_length=80, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class Delivery(StoreScopedModel):
    """One event to one recipient over one channel. Marked sent only after the send returned, so a
    worker that dies in between leaves it pending and it is sent again, with the same event id."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=254)  # an e-mail address, a phone number or "endpoint:<id>"
    endpoint = models.ForeignKey(WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="deliveries")
    buyer = models.ForeignKey("stores.Buyer", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    language = models.CharField(max_length=10, default="zh-hans")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField()
    # A lease, not a lock: whoever claimed the delivery may send it until then; after that anyone may.
    claim = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "channel", "target"], name="delivery_unique_target")]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due",
                         condition=models.Q(status="pending")),
            models.Index(fields=["store", "endpoint", "created_at"], name="delivery_store_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.target} ({self.status})"


class DeliveryAttempt(StoreScopedModel):
    """The delivery log: what was sent, what came back, how long it took."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    attempted_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["store", "delivery", "attempted_at"], name="attempt_store_delivery")]


class BuyerPreference(StoreScopedModel):
    """The channels a buyer wants. Without a row: e-mail yes, SMS yes where there is a phone number."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    buyer = models.OneToOneField("stores.Buyer", on_delete=models.CASCADE, related_name="notification_preference")
    email = models.BooleanField(_("e-mail"), default=True)
    sms = models.BooleanField(_("SMS"), default=True)
    sms_opted_out_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()


class StaffPreference(StoreScopedModel):
    """The events a member of staff wants by e-mail. Without a row: DEFAULT_STAFF_EVENTS."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    events = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "user"], name="staff_preference_unique")]


class ServiceMailbox(StoreScopedModel):
    """A store's service address: mail to it (or to its +token form) belongs to that store."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="service_mailboxes")
    address = models.EmailField(_("address"), unique=True)

    def __str__(self) -> str:
        return self.address


class InboundOutcome(models.TextChoices):
    MESSAGE = "message", _("Added to a case")
    NEW_CASE = "new_case", _("New inquiry")
    AUTO_REPLY = "auto_reply", _("Auto-reply, ignored")
    LOOP = "loop", _("Mail loop, ignored")
    DUPLICATE = "duplicate", _("Already received")
    REJECTED = "rejected", _("Rejected")


class InboundMail(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=250)
    from_address = models.CharField(max_length=254)
    subject = models.CharField(max_length=250, blank=True)
    received_at = models.DateTimeField()
    case = models.ForeignKey("cases.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=12, choices=InboundOutcome.choices)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "message_id"], name="inbound_mail_unique_message")]
        indexes = [models.Index(fields=["store", "from_address", "received_at"], name="inbound_store_sender")]
