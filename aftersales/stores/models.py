"""The tenant (Store), the people who work in it, its buyers and its API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel


class Jurisdiction(models.TextChoices):
    CN = "CN", _("China")
    EU = "EU", _("European Union")
    UK = "UK", _("United Kingdom")
    US = "US", _("United States")


class PlatformMode(models.TextChoices):
    NONE = "none", _("Independent shop")
    TAOBAO = "taobao", _("Taobao / Tmall")
    JD = "jd", _("JD")
    WECHAT = "wechat", _("WeChat shop")


class Role(models.TextChoices):
    ADMIN = "admin", _("Store admin")
    SUPERVISOR = "supervisor", _("Supervisor")
    AGENT = "agent", _("Agent")
    WAREHOUSE = "warehouse", _("Warehouse")
    FINANCE = "finance", _("Finance")


class Marketplace(models.Model):
    """A platform hosting several stores; its arbiters decide disputes between buyers and those stores."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.name


class Store(models.Model):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(unique=True)
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    jurisdiction = models.CharField(_("jurisdiction"), max_length=2, choices=Jurisdiction.choices, default=Jurisdiction.CN)
    platform_mode = models.CharField(
        _("platform mode"), max_length=10, choices=PlatformMode.choices, default=PlatformMode.NONE
    )
    marketplace = models.ForeignKey(Marketplace, null=True, blank=True, on_delete=models.PROTECT, related_name="stores")
    case_number_prefix = models.CharField(_("case number prefix"), max_length=8, default="AS")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def allows_platform_arbitration(self) -> bool:
        return self.marketplace_id is not None or self.platform_mode != PlatformMode.NONE


class StoreCounter(models.Model):
    """Per-store sequences (case numbers). Incremented with a row lock at the end of a transaction."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=40)
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "name"], name="store_counter_unique")]


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    is_away = models.BooleanField(_("away"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "store"], name="membership_unique_user_store")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.store} ({self.role})"


class ArbiterMembership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="arbiter_memberships")
    marketplace = models.ForeignKey(Marketplace, on_delete=models.CASCADE, related_name="arbiters")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "marketplace"], name="arbiter_unique")]


class BuyerTier(models.TextChoices):
    REGULAR = "regular", _("Regular")
    VIP = "vip", _("VIP")


class Buyer(StoreScopedModel):
    """A customer as one store knows them. The same person buying in two stores is two buyers."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="buyers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="buyer_profiles"
    )
    external_id = models.CharField(_("shop's buyer id"), max_length=100)
    name = models.CharField(_("name"), max_length=120, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    language = models.CharField(_("language"), max_length=10, default="zh-hans")
    tier = models.CharField(_("tier"), max_length=10, choices=BuyerTier.choices, default=BuyerTier.REGULAR)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "external_id"], name="buyer_unique_external_id")]

    def __str__(self) -> str:
        return self.name or self.external_id


class ApiToken(StoreScopedModel):
    """A store's credential for its other systems. Only a SHA-256 of the secret is kept."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(max_length=12, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
