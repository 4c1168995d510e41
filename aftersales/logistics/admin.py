from django.contrib import admin

from .models import CaseShipment, DropOffPoint, Exchange, LogisticsSettings, RoutingRule, TrackingEvent, Warehouse


@admin.register(LogisticsSettings)
class LogisticsSettingsAdmin(admin.ModelAdmin):
    list_display = ("store", "receive_on_delivery", "return_methods")
    exclude = ("webhook_secret",)


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "store", "province", "city", "is_default")
    list_filter = ("store",)


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ("store", "position", "category", "province", "warehouse")
    list_filter = ("store",)


@admin.register(DropOffPoint)
class DropOffPointAdmin(admin.ModelAdmin):
    list_display = ("name", "store", "carrier", "active")


class TrackingEventInline(admin.TabularInline):
    model = TrackingEvent
    extra = 0
    readonly_fields = ("at", "status", "description", "location", "source")
    exclude = ("fingerprint", "store")


@admin.register(CaseShipment)
class CaseShipmentAdmin(admin.ModelAdmin):
    list_display = ("case", "direction", "method", "status", "carrier", "tracking_number")
    list_filter = ("status", "direction")
    search_fields = ("tracking_number",)
    raw_id_fields = ("case",)
    inlines = [TrackingEventInline]


@admin.register(Exchange)
class ExchangeAdmin(admin.ModelAdmin):
    list_display = ("case", "replacement_sku", "price_difference", "settlement", "status")
    raw_id_fields = ("case", "order_line", "shipment")
