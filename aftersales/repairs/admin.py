from django.contrib import admin

from .models import RepairOrder, ServiceCentre


@admin.register(ServiceCentre)
class ServiceCentreAdmin(admin.ModelAdmin):
    list_display = ("name", "store", "kind", "active")
    list_filter = ("store", "kind")


@admin.register(RepairOrder)
class RepairOrderAdmin(admin.ModelAdmin):
    list_display = ("case", "attempt", "fault_code", "covered", "quote_status", "outcome", "repair_days")
    list_filter = ("outcome", "quote_status")
    raw_id_fields = ("case", "order_line")
