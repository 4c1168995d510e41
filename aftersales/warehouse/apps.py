from django.apps import AppConfig


class WarehouseConfig(AppConfig):
    name = "aftersales.warehouse"
    label = "warehouse"
    verbose_name = "Receiving, inspection and disposition"
