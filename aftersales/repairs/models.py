"""Repairs (维修 / 保修 / 三包): where devices are repaired, and each repair attempt."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel


class CentreKind(models.TextChoices):
    OWN = "own", _("The store's own")
    THIRD_PARTY = "third_party", _("Third party")


class ServiceCentre(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=CentreKind.choices)
    address = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class QuoteStatus(models.TextChoices):
    NONE = "none", _("Covered, no quote")
    PENDING = "pending", _("Waiting for the buyer")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")


class RepairOutcome(models.TextChoices):
    OPEN = "open", _("Open")
    REPAIRED = "repaired", _("Repaired")
    FAILED = "failed", _("Repair failed")
    NOT_REPAIRED = "not_repaired", _("Not repaired (quote declined)")
    CONVERTED = "converted", _("Converted to exchange or return")


class RepairOrder(StoreScopedModel):
    """One repair attempt on a case's device. A second attempt on the same case is a new order."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="repair_orders")
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="+")
    service_centre = models.ForeignKey(ServiceCentre, on_delete=models.PROTECT, related_name="orders")
    attempt = models.PositiveSmallIntegerField()
    fault_code = models.CharField(_("fault"), max_length=40)
    diagnosis = models.TextField(blank=True)
    covered = models.BooleanField(null=True)
    parts: models.JSONField[Any] = models.JSONField(default=list)
    parts_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    labour_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    quote_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    quote_status = models.CharField(max_length=10, choices=QuoteStatus.choices, default=QuoteStatus.NONE)
    outcome = models.CharField(max_length=14, choices=RepairOutcome.choices, default=RepairOutcome.OPEN)
    # Repair time extends the warranty by the days the device was away for repair (三包 rules); the
    # dates are kept so the policy engine's repair history can be built from them.
    started_on = models.DateField(null=True, blank=True)
    finished_on = models.DateField(null=True, blank=True)
    repair_days = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "attempt"], name="repairorder_unique_attempt")]
