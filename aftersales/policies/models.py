"""A store's own after-sales promises and settings, as the policy engine reads them.

The engine itself is pure (facts in, decision out); this is where a store keeps what it promised.
Promises may only be more generous than the law. Settings the law makes void (a blanket "no 7-day
returns", exclusions wider than the statutory list) can be saved, because a store admin may believe
them valid, but the engine never applies them and flags them on every decision instead.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class StorePolicy(models.Model):
    store = models.OneToOneField("stores.Store", on_delete=models.CASCADE, related_name="policy")
    no_reason_days = models.PositiveSmallIntegerField(
        _("no-reason return window (days)"), null=True, blank=True,
        help_text=_("Leave empty for the statutory window. Shorter than the law is ignored."),
    )
    free_return_shipping = models.BooleanField(_("free return shipping (包退运费)"), default=False)
    shipping_insurance = models.BooleanField(_("return-shipping insurance (运费险)"), default=False)
    shipping_insurance_cap = models.DecimalField(
        _("insurance cap"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    price_protection_days = models.PositiveSmallIntegerField(_("price protection (价保) days"), null=True, blank=True)
    extended_warranty_months = models.PositiveSmallIntegerField(_("extended warranty (months)"), default=0)
    extend_on_public_holiday = models.BooleanField(
        _("move a last day on a public holiday to the next working day"), null=True, blank=True,
        help_text=_("Empty: on for the law floor, off on platforms, which run a fixed clock."),
    )
    store_return_policy = models.BooleanField(
        _("store return policy (US)"), default=False,
        help_text=_("Where the law gives no return right (US), the store's own policy grants one."),
    )
    no_reason_returns_disabled = models.BooleanField(
        _("refuse no-reason returns"), default=False,
        help_text=_("Void where the law grants the right; recorded so the engine can flag it."),
    )
    extra_excluded_categories = models.JSONField(_("extra excluded categories"), default=list, blank=True)
    withdrawal_info_given = models.BooleanField(
        _("buyers are told about the right of withdrawal (EU)"), default=True,
    )
    auto_approve_eligible = models.BooleanField(
        _("approve automatically when the policy allows"), default=False,
    )

    class Meta:
        verbose_name = _("store policy")
        verbose_name_plural = _("store policies")

    def __str__(self) -> str:
        return f"policy of {self.store}"

    def clean(self) -> None:
        if self.shipping_insurance_cap is not None and self.shipping_insurance_cap < 0:
            raise ValidationError({"shipping_insurance_cap": _("The cap cannot be negative.")})
        if self.shipping_insurance_cap is not None and not self.shipping_insurance:
            raise ValidationError({"shipping_insurance_cap": _("Set a cap only with shipping insurance.")})
        if not isinstance(self.extra_excluded_categories, list) or not all(
            isinstance(c, str) for c in self.extra_excluded_categories
        ):
            raise ValidationError({"extra_excluded_categories": _("Give a list of category codes.")})
