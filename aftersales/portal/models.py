"""One-time codes that let a guest reach one order without an account."""

from __future__ import annotations

from django.db import models

from aftersales.core.models import StoreScopedModel


class GuestCode(StoreScopedModel):
    """Only a keyed hash of the code is kept; it expires and allows a few wrong guesses, then is dead."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["order", "-created_at"], name="guestcode_order_created")]
