from django.contrib import admin

from .models import ChecklistTemplate, Inspection, LineDisposition, Receipt


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
