from django.contrib import admin

from .models import BusinessCalendar, Closure, RoutingRule, SlaClock, SlaPolicy, Team, TeamMember, TimeoutSetting


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ("store", "timezone", "holiday_country")


@admin.register(Closure)
class ClosureAdmin(admin.ModelAdmin):
    list_display = ("store", "date", "note")
    list_filter = ("store",)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "store", "position", "active", "kind", "priority", "channel", "buyer_tier",
                    "first_response_minutes", "next_response_minutes", "resolution_minutes", "business_time")
    list_filter = ("store", "active")


@admin.register(SlaClock)
class SlaClockAdmin(admin.ModelAdmin):
    list_display = ("case", "target", "started_at", "due_at", "breached_at", "met_at", "stopped_at")
    list_filter = ("target",)
    raw_id_fields = ("case",)


@admin.register(TimeoutSetting)
class TimeoutSettingAdmin(admin.ModelAdmin):
    list_display = ("store", "status", "minutes", "enabled")


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    extra = 1


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "store")
    inlines = [TeamMemberInline]


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "store", "position", "active", "strategy", "team")
    list_filter = ("store", "strategy")
