from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "aftersales.notifications"
    label = "notifications"
    verbose_name = "Notifications, webhooks and inbound mail"

    def ready(self) -> None:
        from . import listeners

        listeners.connect()
