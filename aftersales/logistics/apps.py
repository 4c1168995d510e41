from django.apps import AppConfig


class LogisticsConfig(AppConfig):
    name = "aftersales.logistics"
    label = "logistics"
    verbose_name = "Return logistics, tracking and exchanges"

    def ready(self) -> None:
        from aftersales.core import events

        from . import services

        events.subscribe("case.transitioned", services.on_case_transitioned)
        events.subscribe_in_transaction("case.transitioned", services.on_case_transitioned_in_transaction)
