from django.apps import AppConfig


class StoresConfig(AppConfig):
    name = "aftersales.stores"
    label = "stores"
    verbose_name = "Stores and people"
