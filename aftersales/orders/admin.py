"""Back-office view of the orders mirror. The mirror is written by the imports; the admin is for looking
and for the occasional correction, so lines are edited inline with their order."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from .models import Order, OrderLine, Payment, Shipment


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = ["line_no", "sku", "name", "category", "quantity", "unit_price", "discount_allocated", "is_gift",
              "customised", "perishable", "nonreturnable_confirmation", "warranty_months"]
    ordering = ["line_no"]


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    fields = ["method", "amount", "fee", "fee_paid_by_buyer", "reference"]


class ShipmentInline(admin.TabularInline):
    model = Shipment
    extra = 0
    fields = ["carrier", "tracking_number", "shipped_at", "signed_at"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["external_id", "store", "buyer", "placed_at", "total_paid", "currency", "channel"]
    list_filter = ["store", "channel"]
    search_fields = ["external_id", "buyer__external_id", "buyer__name", "buyer__email", "buyer__phone"]
    list_select_related = ["store", "buyer"]
    raw_id_fields = ["buyer"]  # a store can have millions of buyers: no drop-down of all of them
    readonly_fields = ["imported_at"]
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline, PaymentInline, ShipmentInline]

    def save_formset(self, request: Any, form: Any, formset: Any, change: bool) -> None:
        # Inline rows carry their own store column; it is always the order's store.
        for instance in formset.save(commit=False):
            instance.store_id = form.instance.store_id
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()
