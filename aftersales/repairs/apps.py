from django.apps import AppConfig


class RepairsConfig(AppConfig):
    name = "aftersales.repairs"
    label = "repairs"
    verbose_name = "Repairs and service centres"
