"""Back-office view of the catalogue: the policy-relevant attributes of each product."""

from __future__ import annotations

from django.contrib import admin

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "store", "category", "price", "customised", "perishable", "warranty_months"]
    list_filter = ["store", "category", "customised", "perishable", "digital_download"]
    search_fields = ["sku", "name"]
    list_select_related = ["store"]
    fieldsets = [
        (None, {"fields": ["store", "sku", "name", "price"]}),
        ("Return policy attributes", {"fields": ["category", "customised", "perishable", "digital_download",
                                                 "sealed_media", "periodical", "sanbao_catalogue", "warranty_months"]}),
    ]
