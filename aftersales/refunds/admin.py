from django.contrib import admin
from django.http import HttpRequest

from .models import Charge, ChargeRefund, ReconciliationReport, Refund, RefundItem, RefundSettings


class RefundItemInline(admin.TabularInline):
    model = RefundItem
    extra = 0
    can_delete = False
    # The ledger is written by the services only; the admin shows it.
    readonly_fields = ("order_line", "payment", "method", "amount", "status", "gateway", "gateway_reference",
                       "failure_reason", "succeeded_at")
    exclude = ("store", "case")


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ("id", "store", "case", "number", "amount", "status", "due_at", "requested_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Refund._meta.fields]
    inlines = [RefundItemInline]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RefundSettings)
class RefundSettingsAdmin(admin.ModelAdmin):
    list_display = ("store", "approval_threshold", "gateway")


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(admin.ModelAdmin):
    list_display = ("store", "day", "gateway", "matched", "created_at")
    readonly_fields = ("store", "day", "gateway", "matched", "mismatches", "created_at")


@admin.register(Charge)
class ChargeAdmin(admin.ModelAdmin):
    list_display = ("id", "store", "case", "amount", "status", "refunded", "abandoned_at", "requested_at")
    list_filter = ("status",)
    # Written by the services only (gateway confirmations, paybacks); the admin shows them.
    readonly_fields = [f.name for f in Charge._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ChargeRefund)
class ChargeRefundAdmin(admin.ModelAdmin):
    list_display = ("id", "store", "case", "charge", "amount", "status", "reason", "requested_at", "succeeded_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in ChargeRefund._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
