from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "aftersales.policies"
    label = "policies"
    verbose_name = "Policies"
