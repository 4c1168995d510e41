from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "aftersales.cases"
    label = "cases"
    verbose_name = "After-sales cases"

    def ready(self) -> None:
        from aftersales.core import events

        from . import listeners

        events.subscribe("orders.updated", listeners.on_orders_updated)
