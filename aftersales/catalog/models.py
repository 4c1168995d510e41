"""Products and the attributes the policy engine needs.

Order lines copy these attributes when the order is imported: what counts for a return is what the
product was when it was sold (and what the buyer confirmed at checkout), not what it is today.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel


class Category(models.TextChoices):
    APPAREL = "apparel", _("Apparel, shoes and bags")
    ELECTRONICS = "electronics", _("Electronics")
    APPLIANCES = "appliances", _("Household appliances")
    FRESH_FOOD = "fresh_food", _("Fresh food")
    FOOD = "food", _("Packaged food")
    COSMETICS = "cosmetics", _("Cosmetics")
    BOOKS = "books", _("Books")
    PERIODICALS = "periodicals", _("Newspapers and magazines")
    MEDIA = "media", _("Audio, video and software")
    DIGITAL = "digital", _("Digital downloads")
    HOME = "home", _("Home and textiles")
    TOYS = "toys", _("Toys")
    JEWELLERY = "jewellery", _("Watches and jewellery")
    CUSTOMISED = "customised", _("Customised goods")
    OTHER = "other", _("Other")


class ProductAttributes(models.Model):
    """The policy-relevant attributes, shared by catalog products and the order lines that copy them."""

    category = models.CharField(_("category"), max_length=20, choices=Category.choices, default=Category.OTHER)
    customised = models.BooleanField(_("customised"), default=False)
    perishable = models.BooleanField(_("perishable"), default=False)
    digital_download = models.BooleanField(_("digital download"), default=False)
    sealed_media = models.BooleanField(_("sealed media or software"), default=False)
    periodical = models.BooleanField(_("newspaper or periodical"), default=False)
    sanbao_catalogue = models.CharField(_("三包 catalogue entry"), max_length=40, blank=True)
    warranty_months = models.PositiveSmallIntegerField(_("warranty months"), default=0)

    class Meta:
        abstract = True


class Product(StoreScopedModel, ProductAttributes):
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    price = models.DecimalField(_("price"), max_digits=12, decimal_places=2)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "sku"], name="product_unique_sku")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"
