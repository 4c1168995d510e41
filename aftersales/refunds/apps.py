from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "aftersales.refunds"
    label = "refunds"
    verbose_name = "Refunds, payment gateways and reconciliation"

    def ready(self) -> None:
        from aftersales.cases import services as case_services

        from . import services

        # A person's "refund" on a case asks the ledger to pay; the gateway's confirmation moves the case.
        case_services.register_refund_requester(services.request_refund_from_case_action)
