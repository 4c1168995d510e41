"""Receiving and inspecting returned goods, and what becomes of each line."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel


class Check(models.TextChoices):
    """What an inspector checks. Each is recorded as passed (True) or not."""

    COMPLETE = "complete", _("Complete: all parts and accessories (配件齐全)")
    SEAL = "seal", _("Seal intact (封条完好)")
    TAGS = "tags", _("Tags attached (吊牌完好)")
    ACTIVATION = "activation", _("Not activated (未激活)")
    DAMAGE = "damage", _("No damage beyond trying it (无人为损坏)")
    WRONG_ITEM = "wrong_item", _("The item we sold (非调包)")
    EMPTY_PARCEL = "empty_parcel", _("Parcel not empty (非空包)")


class Grade(models.TextChoices):
    A = "A", _("As new")
    B = "B", _("Opened, resellable")
    C = "C", _("Needs refurbishing")
    D = "D", _("Not resellable")


class Disposition(models.TextChoices):
    RESTOCK = "restock", _("Restock")
    REFURBISH = "refurbish", _("Refurbish")
    RETURN_TO_VENDOR = "return_to_vendor", _("Return to vendor")
    SCRAP = "scrap", _("Scrap")


class ChecklistTemplate(StoreScopedModel):
    """A store's own checklist for a category, replacing the default one."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=20)
    checks: models.JSONField[Any] = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "category"], name="checklist_unique_category")]


class Receipt(StoreScopedModel):
    """A parcel scanned in at the warehouse."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="receipts")
    scanned_code = models.CharField(max_length=64)
    received_by = models.CharField(max_length=120)
    received_at = models.DateTimeField()


class InspectionResult(models.TextChoices):
    PASSED = "passed", _("Passed")
    FAILED = "failed", _("Failed")


class Inspection(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="inspections")
    result = models.CharField(max_length=8, choices=InspectionResult.choices)
    checklist: models.JSONField[Any] = models.JSONField(default=dict)
    failed_checks: models.JSONField[Any] = models.JSONField(default=list)
    grade = models.CharField(max_length=1, choices=Grade.choices)
    notes = models.TextField(blank=True)
    photo_ids: models.JSONField[Any] = models.JSONField(default=list)
    inspector = models.CharField(max_length=120)
    inspected_at = models.DateTimeField()

    class Meta:
        # A case is inspected once: the table lets it reach `inspecting` only once.
        constraints = [models.UniqueConstraint(fields=["case"], name="inspection_one_per_case")]


class LineDisposition(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="dispositions")
    case_line = models.ForeignKey("cases.CaseLine", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    disposition = models.CharField(max_length=20, choices=Disposition.choices)
    warehouse_code = models.CharField(max_length=20, blank=True)
    decided_by = models.CharField(max_length=120)
    decided_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["inspection", "case_line"], name="disposition_one_per_line")]
        indexes = [models.Index(fields=["store", "decided_at"], name="disposition_store_decided")]


class StockLevel(StoreScopedModel):
    """What one warehouse holds of one SKU. `reserved` units are promised to replacements not shipped yet;
    what can still be promised is `on_hand - reserved`. The CHECKs are the last word on overselling: no
    code path can reserve a unit that is not there, on SQLite as on PostgreSQL."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    warehouse = models.ForeignKey("logistics.Warehouse", on_delete=models.PROTECT, related_name="stock_levels")
    sku = models.CharField(_("SKU"), max_length=64)
    on_hand = models.IntegerField(_("on hand"), default=0)
    reserved = models.IntegerField(_("reserved"), default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["warehouse", "sku"], name="stocklevel_unique_sku"),
            models.CheckConstraint(condition=models.Q(on_hand__gte=0), name="stocklevel_on_hand_not_negative"),
            models.CheckConstraint(condition=models.Q(reserved__gte=0), name="stocklevel_reserved_not_negative"),
            models.CheckConstraint(condition=models.Q(reserved__lte=models.F("on_hand")),
                                   name="stocklevel_reserved_not_above_on_hand"),
        ]
        indexes = [models.Index(fields=["store", "sku"], name="stocklevel_store_sku")]

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class MovementKind(models.TextChoices):
    COUNT = "count", _("Stock count")
    ADJUST = "adjust", _("Adjustment")
    RESERVE = "reserve", _("Reserved for a replacement")
    RELEASE = "release", _("Reservation released")
    SHIP = "ship_replacement", _("Replacement shipped")
    RESTOCK = "restock", _("Returned goods restocked")


class StockMovement(StoreScopedModel):
    """Every change of a stock level, with why and by whom: the stock's own history."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    stock = models.ForeignKey(StockLevel, on_delete=models.CASCADE, related_name="movements")
    kind = models.CharField(max_length=20, choices=MovementKind.choices)
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    on_hand_after = models.IntegerField()
    reserved_after = models.IntegerField()
    case = models.ForeignKey("cases.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=200, blank=True)
    actor = models.CharField(max_length=120)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["store", "at"], name="stockmovement_store_at")]


class ReservationStatus(models.TextChoices):
    RESERVED = "reserved", _("Reserved")
    CONSUMED = "consumed", _("Shipped")
    RELEASED = "released", _("Released")


class StockReservation(StoreScopedModel):
    """The unit(s) held for one exchange's replacement until it ships or the exchange is given up."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    stock = models.ForeignKey(StockLevel, on_delete=models.PROTECT, related_name="reservations")
    exchange = models.OneToOneField("logistics.Exchange", on_delete=models.CASCADE, related_name="reservation")
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.RESERVED)
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
