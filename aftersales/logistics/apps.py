from django.apps import AppConfig


class LogisticsConfig(AppConfig):
    name = "aftersales.logistics"
    label = "logistics"
    verbose_name = "Return logistics, tracking and exchanges"
