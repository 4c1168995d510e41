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
