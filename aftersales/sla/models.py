"""SLA configuration (calendars, policies, timeouts, routing) and the clocks running on each case."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel


def default_hours() -> dict[str, list[list[str]]]:
    return {str(weekday): [["09:00", "18:00"]] for weekday in range(5)}


class BusinessCalendar(StoreScopedModel):
    """When the store works. One per store; a store without one works Monday to Friday, 09:00–18:00,
    in its own time zone, with its country's public holidays."""

    store = models.OneToOneField("stores.Store", on_delete=models.CASCADE, related_name="business_calendar")
    timezone = models.CharField(_("time zone"), max_length=64, blank=True,
                                help_text=_("empty: the store's time zone"))
    # {"0": [["09:00", "18:00"]], ...}: Monday is 0; several intervals make a lunch break.
    hours: models.JSONField[Any] = models.JSONField(_("working hours"), default=default_hours)
    holiday_country = models.CharField(_("public holidays of"), max_length=2, blank=True, default="CN",
                                       help_text=_("ISO country code; CN uses the statutory calendar with 调休"))
    holiday_subdivision = models.CharField(_("region"), max_length=10, blank=True)


class Closure(StoreScopedModel):
    """A day the store is closed on top of public holidays."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="closures")
    date = models.DateField(_("date"))
    note = models.CharField(_("note"), max_length=120, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "date"], name="closure_unique_date")]


class Target(models.TextChoices):
    FIRST_RESPONSE = "first_response", _("First response")
    NEXT_RESPONSE = "next_response", _("Next response")
    RESOLUTION = "resolution", _("Resolution")


class SlaPolicy(StoreScopedModel):
    """Targets for the cases it matches. The first active policy in `position` order whose conditions
    all hold applies; an empty condition matches anything."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="sla_policies")
    name = models.CharField(_("name"), max_length=80)
    position = models.PositiveSmallIntegerField(_("position"), default=100)
    active = models.BooleanField(_("active"), default=True)
    kind = models.CharField(_("case kind"), max_length=20, blank=True)
    priority = models.PositiveSmallIntegerField(_("priority"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=12, blank=True)
    buyer_tier = models.CharField(_("buyer tier"), max_length=10, blank=True)
    first_response_minutes = models.PositiveIntegerField(_("first response (minutes)"), null=True, blank=True)
    next_response_minutes = models.PositiveIntegerField(_("next response (minutes)"), null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(_("resolution (minutes)"), null=True, blank=True)
    business_time = models.BooleanField(_("count business hours only"), default=True)
    warn_at_percent = models.PositiveSmallIntegerField(_("warn at % of the target"), default=80)
    escalate_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("escalate breaches to"))

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(warn_at_percent__range=(1, 100)), name="slapolicy_warn_range"),
        ]

    def __str__(self) -> str:
        return self.name


class SlaClock(StoreScopedModel):
    """One target running on one case. Time consumed is kept in seconds (business or calendar, as the
    policy says); while running, `due_at` and `warn_at` are the moments the sweep looks for, so finding
    what is late is an index range scan and not arithmetic over every open case."""

    # slaclock_store_started serves lookups by store; every new case writes this table's indexes.
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="sla_clocks")
    policy = models.ForeignKey(SlaPolicy, null=True, on_delete=models.SET_NULL, related_name="+")
    target = models.CharField(_("target"), max_length=20, choices=Target.choices)
    business_time = models.BooleanField(default=True)
    budget_seconds = models.PositiveIntegerField()
    warn_seconds = models.PositiveIntegerField()
    consumed_seconds = models.FloatField(default=0)
    started_at = models.DateTimeField()
    running_since = models.DateTimeField(null=True, blank=True)  # null while paused or stopped
    due_at = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    breach_assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    met_at = models.DateTimeField(null=True, blank=True)
    met_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "target"], condition=models.Q(stopped_at__isnull=True),
                                    name="slaclock_one_live_per_target"),
        ]
        indexes = [
            models.Index(fields=["due_at"], name="slaclock_due",
                         condition=models.Q(stopped_at__isnull=True, breached_at__isnull=True,
                                            due_at__isnull=False)),
            models.Index(fields=["warn_at"], name="slaclock_warn",
                         condition=models.Q(stopped_at__isnull=True, warned_at__isnull=True,
                                            warn_at__isnull=False)),
            models.Index(fields=["store", "started_at"], name="slaclock_store_started"),
        ]

    @property
    def paused(self) -> bool:
        return self.stopped_at is None and self.running_since is None


class TimeoutSetting(StoreScopedModel):
    """A store's own number for one platform timeout (cases/deadlines.py has the defaults); `enabled`
    off means nothing happens on its own in that state."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="timeout_settings")
    status = models.CharField(_("case status"), max_length=24)
    minutes = models.PositiveIntegerField(_("after (minutes)"))
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "status"], name="timeoutsetting_unique_status")]


class Team(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(_("name"), max_length=80)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "name"], name="team_unique_name")]

    def __str__(self) -> str:
        return self.name


class TeamMember(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    skills: models.JSONField[Any] = models.JSONField(_("skills"), default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="teammember_unique_user")]


class Strategy(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("Round robin")
    LEAST_LOADED = "least_loaded", _("Least loaded")
    SKILLS = "skills", _("Skills, then least loaded")


class RoutingRule(StoreScopedModel):
    """Who gets a new case. The first active rule in `position` order whose conditions all hold picks an
    agent from its team; an empty list matches anything."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="routing_rules")
    name = models.CharField(_("name"), max_length=80)
    position = models.PositiveSmallIntegerField(_("position"), default=100)
    active = models.BooleanField(_("active"), default=True)
    kinds: models.JSONField[Any] = models.JSONField(default=list, blank=True)
    reasons: models.JSONField[Any] = models.JSONField(default=list, blank=True)
    channels: models.JSONField[Any] = models.JSONField(default=list, blank=True)
    languages: models.JSONField[Any] = models.JSONField(default=list, blank=True)
    sku_categories: models.JSONField[Any] = models.JSONField(default=list, blank=True)
    priorities: models.JSONField[Any] = models.JSONField(default=list, blank=True)
    buyer_tiers: models.JSONField[Any] = models.JSONField(default=list, blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="rules")
    strategy = models.CharField(_("strategy"), max_length=20, choices=Strategy.choices,
                                default=Strategy.ROUND_ROBIN)
    required_skills: models.JSONField[Any] = models.JSONField(default=list, blank=True)
    max_open_per_agent = models.PositiveIntegerField(_("cap of open cases per agent"), default=30)
    last_assigned_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                           on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name
