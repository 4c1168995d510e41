from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from aftersales.stores.permissions import system_actor

from . import services
from .models import ChecklistTemplate, Inspection, LineDisposition, Receipt, StockLevel, StockMovement, StockReservation


@admin.register(ChecklistTemplate)
class ChecklistTemplateAdmin(admin.ModelAdmin):
    list_display = ("store", "category", "checks")


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    list_display = ("case", "scanned_code", "received_by", "received_at")
    raw_id_fields = ("case",)


@admin.register(Inspection)
class InspectionAdmin(admin.ModelAdmin):
    list_display = ("case", "result", "grade", "inspector", "inspected_at")
    list_filter = ("result", "grade")
    raw_id_fields = ("case",)


@admin.register(LineDisposition)
class LineDispositionAdmin(admin.ModelAdmin):
    list_display = ("inspection", "sku", "quantity", "disposition", "decided_at")
    list_filter = ("disposition",)
    raw_id_fields = ("inspection", "case_line")


class StockMovementInline(admin.TabularInline):
    model = StockMovement
    extra = 0
    can_delete = False
    # The history is written by the services only (a change made here would skip the locks and the event).
    readonly_fields = ("kind", "on_hand_delta", "reserved_delta", "on_hand_after", "reserved_after", "case", "reason",
                       "actor", "at")
    exclude = ("store",)


@admin.register(StockLevel)
class StockLevelAdmin(admin.ModelAdmin):
    """A count entered here goes through the same service as the API: under the row lock, refused below
    what is reserved, written to the history and announced."""

    list_display = ("store", "warehouse", "sku", "on_hand", "reserved", "updated_at")
    search_fields = ("sku",)
    fields = ("store", "warehouse", "sku", "on_hand", "reserved", "updated_at")
    readonly_fields = ("reserved", "updated_at")
    inlines = [StockMovementInline]

    def get_readonly_fields(self, request: HttpRequest, obj: StockLevel | None = None) -> tuple[str, ...]:
        return ("store", "warehouse", "sku", "reserved", "updated_at") if obj else ("reserved", "updated_at")

    def save_model(self, request: HttpRequest, obj: StockLevel, form: Any, change: bool) -> None:
        actor = system_actor(obj.store_id, f"admin {request.user}")
        saved = services.set_stock(actor=actor, warehouse_id=obj.warehouse_id, sku=obj.sku, on_hand=obj.on_hand,
                                   reason="count entered in the admin")
        obj.pk, obj.reserved, obj.updated_at = saved.pk, saved.reserved, saved.updated_at
        obj._state.adding = False


@admin.register(StockReservation)
class StockReservationAdmin(admin.ModelAdmin):
    list_display = ("stock", "case", "exchange", "quantity", "status", "created_at", "closed_at")
    list_filter = ("status",)
    readonly_fields = ("store", "stock", "case", "exchange", "quantity", "status", "created_at", "closed_at")
