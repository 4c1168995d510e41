from django.contrib import admin

from .models import Delivery, DeliveryAttempt, InboundMail, OutboxEvent, ServiceMailbox, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "store", "is_active", "failing_since", "created_at")
    list_filter = ("is_active",)
    exclude = ("secret", "previous_secret")  # shown once by the API, never in the back office


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "response_status", "duration_ms", "error", "succeeded")
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("event", "channel", "target", "status", "attempts", "next_attempt_at", "sent_at")
    list_filter = ("channel", "status")
    readonly_fields = ("event", "store", "endpoint", "buyer", "user")
    inlines = [AttemptInline]


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "store", "case_id", "created_at", "dispatched_at")
    list_filter = ("type",)


@admin.register(InboundMail)
class InboundMailAdmin(admin.ModelAdmin):
    list_display = ("received_at", "store", "from_address", "subject", "outcome", "case")
    list_filter = ("outcome",)


admin.site.register(ServiceMailbox)
