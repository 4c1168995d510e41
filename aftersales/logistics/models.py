"""Return logistics: how goods travel between buyer and shop, where they go, and what the carrier says."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel


class ReturnMethod(models.TextChoices):
    SELF_SHIP = "self_ship", _("Buyer ships it (自行寄回)")
    PICKUP = "pickup", _("Courier pickup (上门取件)")
    DROP_OFF = "drop_off", _("Drop-off point (驿站/门店自寄)")


class LogisticsSettings(StoreScopedModel):
    """One row per store; created with defaults the first time it is needed."""

    store = models.OneToOneField("stores.Store", on_delete=models.CASCADE, related_name="logistics_settings")
    # The secret carriers (or the aggregator) sign their pushes with. Never shown after it is set.
    webhook_secret = models.CharField(max_length=80)
    # True: a "delivered" push marks the goods received; False: only the warehouse's scan does.
    receive_on_delivery = models.BooleanField(_("delivery marks the goods received"), default=True)
    return_methods: models.JSONField[Any] = models.JSONField(default=list)


class Warehouse(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="warehouses")
    code = models.SlugField(max_length=20)
    name = models.CharField(_("name"), max_length=120)
    contact_name = models.CharField(_("contact"), max_length=60)
    phone = models.CharField(_("phone"), max_length=32)
    province = models.CharField(_("province"), max_length=30)
    city = models.CharField(_("city"), max_length=30)
    address = models.CharField(_("address"), max_length=255)
    postcode = models.CharField(_("postcode"), max_length=12, blank=True)
    is_default = models.BooleanField(_("default return address"), default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "code"], name="warehouse_unique_code"),
            models.UniqueConstraint(fields=["store"], condition=models.Q(is_default=True),
                                    name="warehouse_one_default"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def full_address(self) -> str:
        return f"{self.province}{self.city}{self.address}"


class RoutingRule(StoreScopedModel):
    """Sends returns of a category and/or from a region to a warehouse; the lowest position that matches
    wins, and a rule with neither condition matches everything."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    category = models.CharField(max_length=20, blank=True)
    province = models.CharField(max_length=30, blank=True)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["position", "id"]


class DropOffPoint(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    address = models.CharField(max_length=255)
    carrier = models.CharField(max_length=12, blank=True)
    opening_hours = models.CharField(max_length=60, blank=True)
    active = models.BooleanField(default=True)


class Direction(models.TextChoices):
    INBOUND = "inbound", _("Buyer to shop")
    OUTBOUND = "outbound", _("Shop to buyer")


class ShipmentStatus(models.TextChoices):
    PICKUP_BOOKED = "pickup_booked", _("Pickup booked")
    AWAITING_DROP_OFF = "awaiting_drop_off", _("Waiting for the drop-off")
    IN_TRANSIT = "in_transit", _("In transit")
    DELIVERED = "delivered", _("Delivered")
    EXCEPTION = "exception", _("Carrier exception")
    LOST = "lost", _("Lost")
    RETURNED_TO_SENDER = "returned_to_sender", _("Returned to sender")


class Purpose(models.TextChoices):
    RETURN = "return", _("Return of goods")
    EXCHANGE = "exchange", _("Replacement")
    REPAIR_BACK = "repair_back", _("Repaired device back")


class CaseShipment(StoreScopedModel):
    """A parcel of a case: the return coming in, or the replacement or repaired device going out."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="shipments")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    purpose = models.CharField(max_length=12, choices=Purpose.choices, default=Purpose.RETURN)
    method = models.CharField(max_length=10, choices=ReturnMethod.choices, blank=True)
    status = models.CharField(max_length=20, choices=ShipmentStatus.choices)
    carrier = models.CharField(max_length=12, blank=True)
    tracking_number = models.CharField(max_length=40, blank=True)
    warehouse = models.ForeignKey(Warehouse, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    drop_off_point = models.ForeignKey(DropOffPoint, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    pickup_address = models.CharField(max_length=255, blank=True)
    pickup_contact = models.CharField(max_length=60, blank=True)
    pickup_phone = models.CharField(max_length=32, blank=True)
    pickup_window_start = models.DateTimeField(null=True, blank=True)
    pickup_window_end = models.DateTimeField(null=True, blank=True)
    booking_reference = models.CharField(max_length=60, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            # A push names only carrier and number: within a store they must lead to one parcel.
            models.UniqueConstraint(fields=["store", "carrier", "tracking_number"],
                                    condition=~models.Q(tracking_number=""), name="shipment_unique_tracking"),
        ]
        indexes = [models.Index(fields=["store", "tracking_number"], name="shipment_store_tracking")]


class TrackingEvent(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    shipment = models.ForeignKey(CaseShipment, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=ShipmentStatus.choices)
    description = models.CharField(max_length=500, blank=True)
    location = models.CharField(max_length=120, blank=True)
    source = models.CharField(max_length=12)
    # The same event pushed twice (carriers resend the whole history on every push) is stored once.
    fingerprint = models.CharField(max_length=64)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["shipment", "fingerprint"], name="trackingevent_unique")]


class Settlement(models.TextChoices):
    NONE = "none", _("Same price")
    CHARGE = "charge", _("Buyer pays the difference")
    REFUND = "refund", _("Shop refunds the difference")


class ExchangeStatus(models.TextChoices):
    RESERVED = "reserved", _("Replacement reserved")
    SHIPPED = "shipped", _("Replacement shipped")
    DELIVERED = "delivered", _("Replacement delivered")
    RELEASED = "released", _("Reservation released")


class Exchange(StoreScopedModel):
    """The replacement chosen for a line of an exchange case, reserved until it ships."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="exchanges")
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    replacement_sku = models.CharField(max_length=64)
    replacement_name = models.CharField(max_length=200)
    original_unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    replacement_unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    # Positive: the buyer owes it; negative: the shop owes it. Both settle outside the ledger here.
    price_difference = models.DecimalField(max_digits=12, decimal_places=2)
    settlement = models.CharField(max_length=8, choices=Settlement.choices)
    status = models.CharField(max_length=10, choices=ExchangeStatus.choices)
    shipment = models.OneToOneField(CaseShipment, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="exchange")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "order_line"], condition=~models.Q(status="released"),
                                    name="exchange_one_live_per_line"),
        ]
