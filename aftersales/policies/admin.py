from django.contrib import admin

from .models import StorePolicy


@admin.register(StorePolicy)
class StorePolicyAdmin(admin.ModelAdmin):
    list_display = ("store", "no_reason_days", "free_return_shipping", "shipping_insurance", "auto_approve_eligible")
    list_filter = ("free_return_shipping", "shipping_insurance", "auto_approve_eligible")
    fieldsets = (
        (None, {"fields": ("store", "auto_approve_eligible")}),
        ("Promises (only more generous than the law)", {"fields": (
            "no_reason_days", "free_return_shipping", "shipping_insurance", "shipping_insurance_cap",
            "price_protection_days", "extended_warranty_months", "extend_on_public_holiday", "store_return_policy",
            "withdrawal_info_given",
        )}),
        ("Settings the law may make void (flagged, never applied)", {"fields": (
            "no_reason_returns_disabled", "extra_excluded_categories",
        )}),
    )
