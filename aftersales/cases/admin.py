"""Reason codes are configuration and editable here; cases are only looked at.

A case's status changes through `transition_case` alone (the table, the permission, the timeline
entry, the events), so the admin shows cases and their timelines but offers no way to edit them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Case, CaseLine, Message, ReasonCode, TimelineEntry


@admin.register(ReasonCode)
class ReasonCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "store", "category", "label_zh", "label_en", "requires_evidence", "active", "sort_order")
    list_filter = ("store", "category", "active", "requires_evidence")
    list_editable = ("active", "sort_order")
    search_fields = ("code", "label_zh", "label_en")

    def has_delete_permission(self, request: HttpRequest, obj: ReasonCode | None = None) -> bool:
        # Cases point at their reason; a code that is no longer offered is made inactive instead.
        return False


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CaseLineInline(_ReadOnlyInline):
    model = CaseLine
    fields = readonly_fields = ("order_line", "quantity")


class MessageInline(_ReadOnlyInline):
    model = Message
    fields = readonly_fields = ("created_at", "visibility", "author_kind", "author_label", "body")
    ordering = ("created_at", "id")


class TimelineInline(_ReadOnlyInline):
    model = TimelineEntry
    verbose_name_plural = "timeline"
    fields = readonly_fields = ("at", "event", "from_status", "to_status", "actor_kind", "actor_label", "data")
    ordering = ("at", "id")


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("number", "store", "kind", "status", "buyer", "assignee", "priority", "created_at", "deadline_at")
    list_filter = ("store", "kind", "status", "priority", "channel")
    search_fields = ("number", "buyer__name", "buyer__external_id", "order__external_id")
    list_select_related = ("store", "buyer", "assignee")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    inlines = (CaseLineInline, MessageInline, TimelineInline)
    fieldsets = (
        (None, {"fields": ("number", "store", "kind", "status", "order", "buyer", "reason", "channel", "priority",
                           "assignee", "subject", "description")}),
        ("Money", {"fields": ("requested_amount", "offer_amount", "refund_amount", "quote_amount")}),
        ("Shipping", {"fields": ("return_carrier", "return_tracking_number", "reship_carrier",
                                 "reship_tracking_number")}),
        ("Decision and clock", {"fields": ("rejection_reason", "decision", "deadline_at", "deadline_rule",
                                           "created_at", "updated_at", "status_changed_at", "closed_at")}),
        ("Rating", {"fields": ("rating", "rating_comment")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Case | None = None) -> list[str]:
        return [f.name for f in Case._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        return False
