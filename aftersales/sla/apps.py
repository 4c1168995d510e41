from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "aftersales.sla"
    label = "sla"
    verbose_name = "SLA, calendars and routing"

    def ready(self) -> None:
        from . import listeners

        listeners.connect()
