from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "aftersales.console"
    label = "console"
